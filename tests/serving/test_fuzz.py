"""Schema-based fuzzing of every route from the live server's own /openapi.json (schemathesis).

Whatever hypothesis generates from the published contract, the server must answer without a
5xx, with a status the contract lists and a body that matches its schema. The server runs
with URLs and file paths disabled, so generated image strings never leave this process.
"""

from __future__ import annotations

import random
import time

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from lychee_rerank.serving.settings import ServerSettings  # noqa: E402

from .conftest import LiveServer  # noqa: E402

MAX_EXAMPLES = 30


@pytest.fixture(scope="module")
def fuzz_target(server_reranker):
    from lychee_rerank.serving.app import create_app

    # Small limits keep each generated request cheap; the limit paths get fuzzed too.
    app = create_app(
        ServerSettings(max_documents=8, max_text_chars=512, max_image_pixels=1_000_000, batch_size=8),
        server_reranker,
    )
    live = LiveServer(app).start()
    yield live
    live.stop()


ALIASES = {"/rerank", "/v2/rerank"}  # same handler as /v1/rerank


def fuzz_operation(live: LiveServer, operation, mode) -> dict[int, int]:
    """Run hypothesis over one operation's generated cases; returns how often each status came back."""
    statuses: dict[int, int] = {}
    # schemathesis also draws from the global ``random`` (dictionary bindings): seed it, or the
    # cases depend on whatever ran before in the session.
    random.seed(0)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def run(case) -> None:
        response = case.call(base_url=live.url, timeout=60)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (case.method, case.path, case.body, response.status_code, response.text[:500])
        # Every check but "schema-valid data must be accepted": the schema cannot say that a query
        # needs text or an image, or that a base64 string must decode to an image; those are 422s.
        excluded = [schemathesis.checks.positive_data_acceptance]
        if response.status_code == 413:
            # A named limit (e.g. more documents than max_documents, the schema's maxItems) is the
            # contract's way of rejecting that data: 413 is listed, with the limit in the body.
            excluded.append(schemathesis.checks.negative_data_rejection)
        case.validate_response(response, excluded_checks=excluded)

    run()
    return statuses


def test_no_server_errors_and_responses_match_the_contract(fuzz_target):
    schema = schemathesis.openapi.from_url(f"{fuzz_target.url}/openapi.json")
    seen: dict[str, dict[int, int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in ALIASES:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and not len(operation.body):
                continue  # nothing to make invalid in a GET without parameters
            started = time.perf_counter()
            seen[f"{operation.label} {mode.value}"] = fuzz_operation(fuzz_target, operation, mode)
            print(f"{operation.label} {mode.value}: {time.perf_counter() - started:.1f} s")
    print("fuzz statuses per operation:", seen)
    labels = {label.rsplit(" ", 1)[0] for label in seen}
    assert {"POST /v1/rerank", "POST /api/rerank", "POST /v1/analyze", "GET /health", "GET /metrics"} <= labels
    # the generator reached the scoring path, not only validation errors
    for label in ("POST /v1/rerank positive", "POST /api/rerank positive", "POST /v1/analyze positive"):
        assert seen[label].get(200, 0) >= 1, seen[label]


# --------------------------------------------------------------------------- hostile values (issue 13)
@pytest.fixture(scope="module")
def hostile_target(server_reranker, tmp_path_factory):
    """Paths enabled, confined to a directory holding a subdirectory and a FIFO."""
    import os

    from lychee_rerank.serving.app import create_app

    root = tmp_path_factory.mktemp("fuzz-allowed")
    (root / "subdir").mkdir()
    os.mkfifo(root / "pipe")
    app = create_app(
        ServerSettings(max_documents=8, max_text_chars=512, max_image_pixels=1_000_000, allow_local_dir=root),
        server_reranker,
    )
    live = LiveServer(app).start()
    yield live
    live.stop()


def test_hostile_values_never_get_a_server_error(hostile_target):
    """NaN and infinities, booleans where numbers go, NUL bytes, zero-width text, directories and
    FIFOs as image paths, base64 look-alikes: every answer is a 200 or a 4xx with a JSON body."""
    import json as _json

    import httpx
    from hypothesis import strategies as st

    pieces = st.sampled_from(list("ab/9j+=.\x00\u200b\u200d\ufeff \n") + ["subdir", "pipe", "..", "/etc", "/9j/4AAQ"])
    odd_text = st.lists(pieces, max_size=8).map("".join)
    numbers = st.one_of(
        st.booleans(), st.integers(-3, 10), st.floats(allow_nan=True, allow_infinity=True), st.none(), st.text(max_size=3)
    )
    item = st.one_of(odd_text, st.fixed_dictionaries({}, optional={"text": odd_text, "image": odd_text}))
    body = st.fixed_dictionaries(
        {"query": item, "documents": st.lists(item, max_size=4)},
        optional={"top_n": numbers, "score_threshold": numbers, "return_documents": numbers},
    )
    statuses: dict[int, int] = {}

    @given(payload=body)
    @settings(max_examples=MAX_EXAMPLES * 2, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def run(payload) -> None:
        raw = _json.dumps(payload, allow_nan=True).encode()  # NaN/Infinity literals, as Python clients send them
        with httpx.Client(base_url=hostile_target.url, timeout=60) as c:
            r = c.post("/v1/rerank", content=raw, headers={"content-type": "application/json"})
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code < 500, (payload, r.status_code, r.text[:500])
        answer = r.json()
        assert "results" in answer if r.status_code == 200 else answer["error"]["message"]

    run()
    print("hostile fuzz statuses:", statuses)
    assert statuses.get(200, 0) >= 1 and statuses.get(422, 0) >= 1, statuses
