"""Every limit answers with its status and a body naming the limit, the value and the maximum."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PIL import Image

from lychee_rerank import LycheeReranker
from lychee_rerank.serving.settings import ServerSettings

from .conftest import b64, metric_value, png

TEXTS = ["a black cat", "red car", "coffee cup"]


def limit_error(response, limit: str, value: float, maximum: float, status: int = 413) -> dict:
    assert response.status_code == status, response.text
    err = response.json()["error"]
    assert err["type"] == "limit_exceeded"
    assert err["limit"] == limit
    assert err["value"] == value
    assert err["max"] == maximum
    assert limit in err["message"]
    return err


def document_refused(response, index: int, limit: str, detail: str) -> None:
    """An oversized document image is that document's error; every other document is scored."""
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    failed = [r for r in results if r.get("error")]
    assert [r["index"] for r in failed] == [index]
    assert limit in failed[0]["error"] and detail in failed[0]["error"]
    assert all(r.get("error") is None and r["relevance_score"] > 0 for r in results if r["index"] != index), results


@pytest.fixture
def limited(start_server, server_reranker):
    settings = ServerSettings(
        max_documents=3, max_request_bytes=60_000, max_image_bytes=5_000, max_image_pixels=10_000,
        max_text_chars=200,
    )
    return start_server(settings, server_reranker)


def test_max_documents(limited):
    with limited.client() as c:
        assert c.post("/v1/rerank", json={"query": "q", "documents": TEXTS}).status_code == 200
        r = c.post("/v1/rerank", json={"query": "q", "documents": TEXTS + ["one more"]})
        err = limit_error(r, "max_documents", 4, 3)
        assert "4 documents" in err["message"]
        limit_error(c.post("/api/rerank", json={"query": {"text": "q"}, "documents": [{"text": "d"}] * 5}), "max_documents", 5, 3)


def test_max_request_bytes_declared_and_chunked(limited):
    big = {"query": "q", "documents": ["x" * 100] * 2, "padding": "y" * 70_000}
    with limited.client() as c:
        r = c.post("/v1/rerank", json=big)
        err = limit_error(r, "max_request_bytes", len(r.request.content), 60_000)
        assert "over the limit of 60,000" in err["message"]

        def chunks():  # no Content-Length: the server must count as it reads
            yield b'{"query": "q", "documents": ["d"], "padding": "'
            for _ in range(40):
                yield b"z" * 2_000
            yield b'"}'

        r = c.post("/v1/rerank", content=chunks(), headers={"content-type": "application/json"})
        assert "content-length" not in {k.lower() for k in r.request.headers}
        assert r.status_code == 413
        assert r.json()["error"]["limit"] == "max_request_bytes"
        assert r.json()["error"]["value"] > 60_000


def test_max_image_bytes(limited):
    noisy = png(Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 60, 3), dtype=np.uint8)))
    assert len(noisy) > 5_000
    with limited.client() as c:
        r = c.post("/v1/rerank", json={"query": "q", "documents": ["ok", {"image": b64(noisy)}]})
        document_refused(r, 1, "max_image_bytes", f"{len(noisy):,} bytes")
        r = c.post("/v1/rerank", json={"query": {"image": b64(noisy)}, "documents": ["ok"]})
        limit_error(r, "max_image_bytes", len(noisy), 5_000)


def test_max_image_pixels_is_checked_before_decoding(limited):
    flat = png(Image.new("RGB", (120, 100), (10, 200, 30)))
    assert len(flat) < 5_000
    with limited.client() as c:
        r = c.post("/v1/rerank", json={"query": "q", "documents": ["ok", [{"type": "image_url", "image_url": {"url": b64(flat)}}]]})
        document_refused(r, 1, "max_image_pixels", "120x100")
        r = c.post("/v1/rerank", json={"query": {"image": b64(flat)}, "documents": ["ok"]})
        err = limit_error(r, "max_image_pixels", 12_000, 10_000)
        assert "120x100" in err["message"]
        r = c.post("/v1/analyze", json={"query": "q", "document": {"image": b64(flat)}})
        limit_error(r, "max_image_pixels", 12_000, 10_000)


def test_max_text_chars(limited):
    long = "word " * 50  # 250 characters
    with limited.client() as c:
        limit_error(c.post("/v1/rerank", json={"query": "q", "documents": ["ok", long]}), "max_text_chars", 250, 200)
        limit_error(c.post("/v1/rerank", json={"query": long, "documents": ["ok"]}), "max_text_chars", 250, 200)
        limit_error(
            c.post("/v1/rerank", json={"query": "q", "documents": ["ok"], "instruction": long}), "max_text_chars", 250, 200
        )
        parts = [{"type": "text", "text": "a" * 150}, {"type": "text", "text": "b" * 150}]
        limit_error(c.post("/v1/rerank", json={"query": "q", "documents": [parts]}), "max_text_chars", 301, 200)


def test_limits_count_in_metrics(limited):
    with limited.client() as c:
        c.post("/v1/rerank", json={"query": "q", "documents": TEXTS * 2})
        text = c.get("/metrics").text
    assert metric_value(text, "lychee_errors_total", kind="limit") >= 1
    assert metric_value(text, "lychee_requests_total", route="/v1/rerank", method="POST", status="413") >= 1


def test_request_timeout_is_504(start_server, server_reranker):
    live = start_server(ServerSettings(request_timeout_s=0.05, batch_size=1), server_reranker)
    with live.client() as c:
        started = time.perf_counter()
        r = c.post("/v1/rerank", json={"query": "q", "documents": [f"document number {i}" for i in range(200)]})
        elapsed = time.perf_counter() - started
        assert r.status_code == 504, r.text
        err = r.json()["error"]
        assert err["type"] == "timeout" and err["limit"] == "request_timeout_s" and err["max"] == 0.05
        assert elapsed < 5  # answered at the deadline, not after scoring 200 documents
        # the abandoned job stops at its next batch; the queue drains
        deadline = time.monotonic() + 10
        while metric_value(c.get("/metrics").text, "lychee_queue_depth") != 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        text = c.get("/metrics").text
    assert metric_value(text, "lychee_queue_depth") == 0
    assert metric_value(text, "lychee_errors_total", kind="timeout") == 1
    assert metric_value(text, "lychee_batch_size_count") < 200  # it did not go on to score everything


def test_full_queue_is_503_with_retry_after(start_server, server_reranker):
    live = start_server(ServerSettings(max_queue=1, batch_size=1), server_reranker)
    slow_docs = [f"document number {i} about cats and cars" for i in range(300)]
    outcome: dict = {}

    def slow() -> None:
        with live.client() as c:
            outcome["slow"] = c.post("/v1/rerank", json={"query": "q", "documents": slow_docs})

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        with live.client() as c:
            deadline = time.monotonic() + 20
            while metric_value(c.get("/metrics").text, "lychee_queue_depth") < 1:
                assert time.monotonic() < deadline and thread.is_alive(), "the slow request never reached the model"
                time.sleep(0.005)
            r = c.post("/v1/rerank", json={"query": "q", "documents": ["quick"]})
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1"
            err = r.json()["error"]
            assert err["type"] == "overloaded" and err["limit"] == "max_queue" and err["max"] == 1
    finally:
        thread.join(timeout=60)
    assert outcome["slow"].status_code == 200
    assert len(outcome["slow"].json()["results"]) == 300
    with live.client() as c:  # and once the queue drained, it serves again
        assert c.post("/v1/rerank", json={"query": "q", "documents": ["quick"]}).status_code == 200


def test_internal_error_is_500_json_without_traceback(start_server, server_model_dir):
    broken = LycheeReranker.from_pretrained(server_model_dir, device="cpu", dtype="float32")

    def corrupted(*args, **kwargs):  # a fault outside per-pair isolation (a corrupted model state)
        raise AttributeError("'NoneType' object has no attribute 'apply_chat_template'")

    broken.backend.score_groups = corrupted
    live = start_server(ServerSettings(), broken)
    with live.client() as c:
        r = c.post("/v1/rerank", json={"query": "q", "documents": ["d"]})
        assert r.status_code == 500
        err = r.json()["error"]
        assert err["type"] == "internal_error" and "reference" in err["message"]
        assert "Traceback" not in r.text and "NoneType" not in r.text and "apply_chat_template" not in r.text
        assert metric_value(c.get("/metrics").text, "lychee_errors_total", kind="internal") == 1
        assert c.get("/health").status_code == 200  # the process is still up
