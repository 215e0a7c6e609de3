"""The service on Ray Serve (2 replicas, real local Ray, proxy on 127.0.0.1) answers
``/v1/rerank`` exactly like the single-process server."""

from __future__ import annotations

import base64
import concurrent.futures
import io
import socket
import time
from typing import Any

import httpx
import pytest

from ..conftest import make_photo
from ..ray_support import ray_local  # noqa: F401 - the shared session fixture
from .conftest import LiveServer

serve = pytest.importorskip("ray.serve")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def data_uri(seed: int) -> str:
    buf = io.BytesIO()
    make_photo(72, 56, seed).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def requests_to_send() -> list[dict[str, Any]]:
    """Text, image and mixed documents, an instruction, top_n, a bad document, a bad query."""
    return [
        {"query": "a red bicycle", "documents": ["a red bicycle by a wall", "a bowl of soup", "bicycles for sale", "weather"]},
        {"query": {"text": "this picture"}, "documents": [{"image": data_uri(1)}, {"text": "a photo", "image": data_uri(2)}, "text only"],
         "instruction": "Find the matching picture.", "top_n": 2},
        {"query": "anything", "documents": ["fine", {"image": "data:image/png;base64,bm90IGFuIGltYWdl"}]},
        {"query": "", "documents": ["x"]},
    ]


def comparable(response: httpx.Response) -> tuple[int, Any]:
    """Status and body without the per-request id."""
    body = response.json()
    if isinstance(body, dict):
        body.pop("id", None)
    return response.status_code, body


def test_two_replicas_answer_like_the_single_process_server(ray_local, tiny_model_dir) -> None:
    from lychee_rerank.serving.ray_serve import APP_NAME, ReplicaOptions, run
    from lychee_rerank.serving.app import create_app
    from lychee_rerank.serving.settings import ServerSettings

    settings = ServerSettings(
        backend="lychee", model=str(tiny_model_dir), device="cpu", dtype="float32", host="127.0.0.1", port=free_port(),
    )
    single = LiveServer(create_app(settings)).start()
    try:
        single.wait_healthy()
        run(settings, ReplicaOptions(num_replicas=2, num_cpus=0.5, max_ongoing_requests=8), blocking=False)
        status = serve.status().applications[APP_NAME]
        replicas = status.deployments["LycheeReranker"].replica_states
        assert replicas.get("RUNNING") == 2, replicas

        serve_url = f"http://127.0.0.1:{settings.port}"
        with httpx.Client(base_url=serve_url, timeout=60) as ray_client, single.client() as one_client:
            deadline = time.monotonic() + 60
            while ray_client.get("/health").status_code != 200:  # the proxy may lag the replicas
                assert time.monotonic() < deadline, "Serve proxy never answered /health"
                time.sleep(0.2)
            for body in requests_to_send():
                want_status, want = comparable(one_client.post("/v1/rerank", json=body))
                got_status, got = comparable(ray_client.post("/v1/rerank", json=body))
                assert got_status == want_status, (body, got, want)
                if want_status != 200:
                    assert got == want
                    continue
                assert [r["index"] for r in got["results"]] == [r["index"] for r in want["results"]]
                for g, w in zip(got["results"], want["results"]):
                    # Other micro-batch compositions: the FP32 parity tolerance of every parity test.
                    assert g.pop("relevance_score") == pytest.approx(w.pop("relevance_score"), abs=1e-5)
                assert got == want

            # Concurrent load is spread over both replicas and every answer is still right.
            body = requests_to_send()[0]
            _, want = comparable(one_client.post("/v1/rerank", json=body))
            with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
                answers = list(pool.map(lambda _: comparable(ray_client.post("/v1/rerank", json=body)), range(12)))
            for status_code, got in answers:
                assert status_code == 200
                assert [r["relevance_score"] for r in got["results"]] == pytest.approx(
                    [r["relevance_score"] for r in want["results"]], abs=1e-6)
    finally:
        try:
            single.stop()
        finally:
            serve.shutdown()  # the Serve proxy and replicas go even if the local server hung
