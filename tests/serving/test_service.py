"""Health while loading, metrics, OpenAPI, and `lychee serve` as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from lychee_rerank import LycheeReranker
from lychee_rerank.serving.settings import ServerSettings
from lychee_rerank.testing.processes import stop_process

from .conftest import free_port, metric_value


def test_health_is_503_while_loading_then_ok(start_server, server_model_dir):
    gate = threading.Event()

    def slow_loader(settings: ServerSettings) -> LycheeReranker:
        assert gate.wait(timeout=30)
        return LycheeReranker.from_pretrained(server_model_dir, device="cpu", dtype="float32")

    live = start_server(ServerSettings(), loader=slow_loader)
    with live.client() as c:
        r = c.get("/health")
        assert r.status_code == 503
        assert r.json()["status"] == "loading" and r.json()["model"] is None and r.json()["uptime_s"] >= 0
        assert r.json()["family"] is None  # nothing loaded yet
        busy = c.post("/v1/rerank", json={"query": "q", "documents": ["d"]})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "5"
        assert busy.json()["error"]["type"] == "loading"
        assert metric_value(c.get("/metrics").text, "lychee_model_loaded") == 0
        gate.set()
    health = live.wait_healthy(timeout_s=30)
    assert health["status"] == "ok"
    assert health["backend"] == "lychee" and health["model"] == str(server_model_dir)
    assert health["family"] == "qwen2_5_vl"  # read from the checkpoint's config.json
    assert health["device"] == "cpu" and health["dtype"] == "float32" and health["attn_implementation"] == "sdpa"
    with live.client() as c:
        assert c.post("/v1/rerank", json={"query": "q", "documents": ["d"]}).status_code == 200
        assert metric_value(c.get("/metrics").text, "lychee_model_loaded") == 1


def test_health_reports_a_failed_load(start_server, tmp_path):
    live = start_server(ServerSettings(backend="lychee", model=str(tmp_path / "no-model-here")))
    deadline = time.monotonic() + 60
    with live.client() as c:
        while (body := c.get("/health").json())["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.05)
        r = c.get("/health")
        assert r.status_code == 503 and body["status"] == "error" and body["error"]
        rr = c.post("/v1/rerank", json={"query": "q", "documents": ["d"]})
        assert rr.status_code == 503 and rr.json()["error"]["type"] == "unavailable"


def test_metrics_cover_requests_documents_latency_batches(start_server, server_reranker):
    live = start_server(ServerSettings(batch_size=2), server_reranker)
    with live.client() as c:
        c.post("/v1/rerank", json={"query": "q", "documents": ["a", "b", "c", {"image": "bm90IGFuIGltYWdl"}]})
        c.post("/v1/analyze", json={"query": "q", "document": "a"})
        c.get("/health")
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert metric_value(text, "lychee_requests_total", route="/v1/rerank", method="POST", status="200") == 1
    assert metric_value(text, "lychee_requests_total", route="/health", method="GET", status="200") == 1
    assert metric_value(text, "lychee_documents_total", route="/v1/rerank") == 4
    assert metric_value(text, "lychee_documents_total", route="/v1/analyze") == 1
    assert metric_value(text, "lychee_request_duration_seconds_count", route="/v1/rerank") == 1
    assert metric_value(text, "lychee_model_duration_seconds_count", route="/v1/rerank") == 1
    assert metric_value(text, "lychee_documents_per_request_bucket", le="4.0") == 1
    assert metric_value(text, "lychee_errors_total", kind="document") == 1
    # three valid documents at batch size 2: forward passes of 2 and 1 (+1 for analyze)
    assert metric_value(text, "lychee_batch_size_count") == 3
    assert metric_value(text, "lychee_batch_size_sum") == 4
    assert metric_value(text, "lychee_queue_depth") == 0
    assert "# TYPE lychee_queue_depth gauge" in text


def test_openapi_is_generated_from_the_models(start_server, server_reranker):
    live = start_server(ServerSettings(), server_reranker)
    with live.client() as c:
        schema = c.get("/openapi.json").json()
        docs = c.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    for path in ("/v1/rerank", "/rerank", "/v2/rerank", "/api/rerank", "/v1/analyze"):
        assert "post" in schema["paths"][path], path
    for path in ("/health", "/metrics"):
        assert "get" in schema["paths"][path]
    schemas = schema["components"]["schemas"]
    request = schemas["RerankRequest"]
    assert request["examples"] and request["properties"]["top_n"]["description"]
    assert "description" in request["properties"]["documents"]
    assert {"413", "422", "503", "504"} <= set(schema["paths"]["/v1/rerank"]["post"]["responses"])
    for name in ("RerankResponse", "ErrorResponse", "HealthResponse", "AnalyzeResponse", "SeedRerankRequest"):
        assert name in schemas
    assert request["properties"]["documents"]["maxItems"] == 1000  # this server's max_documents
    assert "security" not in schema  # no key configured: nothing to document


def test_lychee_serve_command(server_model_dir: Path, tmp_path: Path):
    """The CLI end to end: flags, LYCHEE_API_KEY from the environment, background loading, shutdown."""
    port = free_port()
    env = {**os.environ, "LYCHEE_API_KEY": "cli-key", "HF_HUB_OFFLINE": "1"}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lychee_rerank.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--backend", "lychee", "--model", str(server_model_dir), "--device", "cpu", "--dtype", "float32",
         "--max-documents", "2", "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"{url}/health", timeout=5).status_code
            except httpx.TransportError:
                status = None
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200, (tmp_path / "serve.log").read_text()
        body = {"query": "q", "documents": ["a", "b"]}
        assert httpx.post(f"{url}/v1/rerank", json=body, timeout=30).status_code == 401
        auth = {"Authorization": "Bearer cli-key"}
        ok = httpx.post(f"{url}/v1/rerank", json=body, headers=auth, timeout=30)
        assert ok.status_code == 200 and len(ok.json()["results"]) == 2
        over = httpx.post(f"{url}/v1/rerank", json={"query": "q", "documents": ["a", "b", "c"]}, headers=auth, timeout=30)
        assert over.status_code == 413 and over.json()["error"]["limit"] == "max_documents"
    finally:
        stop_process(proc)
        log.close()
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()


def test_lychee_serve_rejects_bad_settings(tmp_path: Path):
    out = subprocess.run(
        [sys.executable, "-m", "lychee_rerank.cli", "serve", "--allow-local-dir", str(tmp_path / "missing"), "--port", "1"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2
    message = " ".join(out.stderr.split())  # rich wraps long lines
    assert "allow_local_dir" in message and "not an existing directory" in message
