"""One real local Ray instance for the Ray tests (Ray Data batch, Ray Serve), started once.

Imported by each Ray test module; whichever asks first starts Ray, the other finds it running.
Two CPUs, no dashboard, no usage reporting: nothing leaves the machine. Also the Ray Serve
check every family's serving test runs: the replicas answer as the single-process server.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import time
from typing import Any, Iterator

import pytest

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(
            address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
            logging_level=logging.WARNING, configure_logging=True,
        )
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
    yield ray
    if started:
        ray.shutdown()


def comparable(response: Any) -> tuple[int, Any]:
    """Status and body of an HTTP response without the per-request id."""
    body = response.json()
    if isinstance(body, dict):
        body.pop("id", None)
    return response.status_code, body


@contextlib.contextmanager
def serve_replicas(settings: Any, replicas: int = 2) -> Iterator[Any]:
    """``lychee serve-ray``'s app with ``replicas`` replicas, as an HTTP client once its proxy answers
    ``/health``; Serve (proxy and replicas) is shut down on the way out, whatever happened."""
    import httpx
    from ray import serve

    from lychee_rerank.serving.ray_serve import APP_NAME, ReplicaOptions, run

    try:
        run(settings, ReplicaOptions(num_replicas=replicas, num_cpus=0.5, max_ongoing_requests=8), blocking=False)
        states = serve.status().applications[APP_NAME].deployments["LycheeReranker"].replica_states
        assert states.get("RUNNING") == replicas, states
        with httpx.Client(base_url=f"http://127.0.0.1:{settings.port}", timeout=60) as client:
            deadline = time.monotonic() + 60
            while client.get("/health").status_code != 200:  # the proxy may lag the replicas
                assert time.monotonic() < deadline, "Serve proxy never answered /health"
                time.sleep(0.2)
            yield client
    finally:
        serve.shutdown()


def assert_same_answers(ray_client: Any, one_client: Any, requests: list[dict], concurrent_calls: int = 12,
                        tol: float = 1e-5) -> None:
    """Every request answers through the replicas as through the single-process server (scores to
    ``tol``: other micro-batch compositions), then the first one again under concurrent load."""
    for body in requests:
        want_status, want = comparable(one_client.post("/v1/rerank", json=body))
        got_status, got = comparable(ray_client.post("/v1/rerank", json=body))
        assert got_status == want_status, (body, got, want)
        if want_status != 200:
            assert got == want
            continue
        assert [r["index"] for r in got["results"]] == [r["index"] for r in want["results"]]
        for g, w in zip(got["results"], want["results"]):
            assert g.pop("relevance_score") == pytest.approx(w.pop("relevance_score"), abs=tol)
        assert got == want
    _, want = comparable(one_client.post("/v1/rerank", json=requests[0]))
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: comparable(ray_client.post("/v1/rerank", json=requests[0])),
                                range(concurrent_calls)))
    for status_code, got in answers:
        assert status_code == 200
        assert [r["relevance_score"] for r in got["results"]] == pytest.approx(
            [r["relevance_score"] for r in want["results"]], abs=tol)
