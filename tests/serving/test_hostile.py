"""Hostile and careless input against a live server (issue 13, items 1-4 and 6).

Real uvicorn servers on 127.0.0.1, real files (a directory, a FIFO), a real dripping HTTP
server on loopback, raw sockets for malformed HTTP. Addresses that must be refused are never
connected to: the fetcher's dialer is pointed at the loopback test server instead, so a
refusal is seen as "the loopback server got no request".
"""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from lychee_rerank.serving import sources
from lychee_rerank.serving.settings import ServerSettings
from lychee_rerank.serving.sources import SourceError, UrlFetcher, address_refusal

from .conftest import b64, data_uri, server_photo
from .test_security import _stub_resolver, image_host  # noqa: F401 - fixture reused


def _rerank(live, body: dict, **kwargs) -> "object":
    with live.client(**kwargs) as c:
        return c.post("/v1/rerank", json=body)


@pytest.fixture
def allowed_dir(tmp_path: Path, server_images: list[bytes]) -> Path:
    root = tmp_path / "allowed"
    root.mkdir()
    (root / "cat.png").write_bytes(server_images[0])
    (root / "subdir").mkdir()
    os.mkfifo(root / "pipe")
    return root


# --------------------------------------------------------------------------- 1. NUL byte
def test_nul_byte_in_image_path_is_that_documents_error(start_server, server_reranker, allowed_dir):
    live = start_server(ServerSettings(allow_local_dir=allowed_dir), server_reranker)
    r = _rerank(live, {"query": "a cat", "documents": [{"image": "cat.png\u0000"}, "a cat on a mat", {"image": "cat.png"}]})
    assert r.status_code == 200, r.text
    results = {x["index"]: x for x in r.json()["results"]}
    assert "NUL" in results[0]["error"]
    assert "error" not in results[1] and "error" not in results[2]  # the rest of the batch is scored

    q = _rerank(live, {"query": {"image": "ok\u0000"}, "documents": ["d"]})
    assert q.status_code == 422, q.text
    assert "NUL" in q.json()["error"]["message"]


# --------------------------------------------------------------------------- 2. directory, FIFO
def test_directory_and_fifo_as_image_path_fail_alone(start_server, server_reranker, allowed_dir):
    live = start_server(ServerSettings(allow_local_dir=allowed_dir), server_reranker)
    started = time.monotonic()
    r = _rerank(live, {"query": "a cat", "documents": [{"image": "subdir"}, {"image": "pipe"}, {"image": "cat.png"}]})
    assert time.monotonic() - started < 30  # a FIFO with no writer must not hang the read
    assert r.status_code == 200, r.text
    results = {x["index"]: x for x in r.json()["results"]}
    assert "directory" in results[0]["error"], results[0]
    assert "not a regular file" in results[1]["error"], results[1]
    assert "error" not in results[2]

    q = _rerank(live, {"query": {"image": str(allowed_dir / "subdir")}, "documents": ["d"]})
    assert q.status_code == 422 and "directory" in q.json()["error"]["message"]


# --------------------------------------------------------------------------- 3. raw base64 JPEG
def test_raw_base64_jpeg_is_not_taken_for_an_absolute_path(start_server, server_reranker, allowed_dir):
    buf = io.BytesIO()
    server_photo(64, 48, seed=3).save(buf, format="JPEG")
    raw = b64(buf.getvalue())
    assert raw.startswith("/9j/")  # looks like an absolute path
    live = start_server(ServerSettings(allow_local_dir=allowed_dir), server_reranker)
    r = _rerank(live, {"query": "a photo", "documents": [{"image": raw}, {"image": "data:image/jpeg;base64," + raw}]})
    assert r.status_code == 200, r.text
    results = {x["index"]: x for x in r.json()["results"]}
    assert "error" not in results[0], results[0]
    assert results[0]["relevance_score"] == pytest.approx(results[1]["relevance_score"], abs=1e-6)
    # A real absolute path outside the directory is still refused, and a file inside still read.
    r = _rerank(live, {"query": "q", "documents": [{"image": "/etc/hostname"}, {"image": str(allowed_dir / "cat.png")}]})
    results = {x["index"]: x for x in r.json()["results"]}
    assert "outside the allowed directory" in results[0]["error"]
    assert "error" not in results[1]


# --------------------------------------------------------------------------- 4. URL deadline, embedded addresses
class DripServer:
    """A loopback HTTP server that answers with a status line, then one header byte every
    ``interval`` seconds for ``duration`` seconds: per-read timeouts never fire on it."""

    def __init__(self, interval: float = 0.1, duration: float = 15.0) -> None:
        self.interval, self.duration = interval, duration
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
                end = time.monotonic() + self.duration
                while time.monotonic() < end and not self.stop.is_set():
                    conn.sendall(b"a")
                    time.sleep(self.interval)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def drip_server() -> Iterator[DripServer]:
    server = DripServer()
    yield server
    server.close()


def _dial_loopback(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    """Whatever address the fetcher decided to connect to, dial the loopback test server."""
    monkeypatch.setattr(sources._PinnedBackend, "_target", lambda self, wanted: ("127.0.0.1", port))


def test_url_deadline_covers_slow_headers(monkeypatch, start_server, server_reranker, drip_server):
    _dial_loopback(monkeypatch, drip_server.port)
    resolver = _stub_resolver({"drip.example.com": ["93.184.216.34"]})
    started = time.monotonic()
    with pytest.raises(SourceError, match="longer than 1 s"):
        UrlFetcher(max_bytes=1_000_000, timeout_s=1.0, resolver=resolver).fetch("http://drip.example.com/a.png")
    assert time.monotonic() - started < 3.0  # the drip goes on for 15 s

    # And end to end: the document fails alone, the request answers within the URL deadline.
    live = start_server(ServerSettings(allow_urls=True, url_timeout_s=1.0), server_reranker)
    live.app.state.reader.fetcher.resolver = resolver
    started = time.monotonic()
    r = _rerank(live, {"query": "q", "documents": [{"image": "http://drip.example.com/a.png"}, "a text"]})
    assert time.monotonic() - started < 5.0
    results = {x["index"]: x for x in r.json()["results"]}
    assert "longer than 1 s" in results[0]["error"] and "error" not in results[1]
    assert drip_server.connections == 2


@pytest.mark.parametrize(
    "address, embedded",
    [
        ("2002:7f00:1::", "127.0.0.1"),  # 6to4 of loopback
        ("2002:c0a8:0101::1", "192.168.1.1"),  # 6to4 of a private address
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1"),  # Teredo, client 10.0.0.1 (obfuscated)
        ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64 well-known prefix
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),  # NAT64 of the cloud metadata address
        ("::ffff:127.0.0.1", "127.0.0.1"),  # IPv4-mapped
    ],
)
def test_embedded_private_ipv4_is_refused(address, embedded):
    reason = address_refusal(address)
    assert reason is not None and embedded in reason, reason


def test_embedded_public_ipv4_is_judged_as_what_it_embeds():
    assert address_refusal("2002:5db8:d822::1") is None  # 6to4 of 93.184.216.34
    assert address_refusal("64:ff9b::5db8:d822") is None  # NAT64 of 93.184.216.34
    assert address_refusal("64:ff9b:1::a00:1") is not None  # local-use NAT64: operator-defined, refused


def test_6to4_loopback_url_is_refused_end_to_end(monkeypatch, start_server, server_reranker, image_host):  # noqa: F811
    port, handler = image_host
    _dial_loopback(monkeypatch, port)  # were the address allowed, the request would land here
    live = start_server(ServerSettings(allow_urls=True), server_reranker)
    live.app.state.reader.fetcher.resolver = _stub_resolver({"sixtofour.example": ["2002:7f00:1::"]})
    r = _rerank(live, {"query": "q", "documents": [{"image": "http://sixtofour.example/cat.png"}, "text"]})
    results = {x["index"]: x for x in r.json()["results"]}
    assert "refused" in results[0]["error"] and "127.0.0.1" in results[0]["error"], results[0]
    assert handler.hits == []


# --------------------------------------------------------------------------- 6. smaller ones
def _raw_post(live, body: bytes, path: str = "/v1/rerank") -> tuple[int, dict]:
    with live.client() as c:
        r = c.post(path, content=body, headers={"content-type": "application/json"})
    return r.status_code, r.json()


def test_nan_threshold_and_boolean_numbers_are_422(start_server, server_reranker):
    live = start_server(ServerSettings(), server_reranker)
    for raw in (
        b'{"query": "q", "documents": ["a"], "score_threshold": NaN}',
        b'{"query": "q", "documents": ["a"], "score_threshold": Infinity}',
        b'{"query": "q", "documents": ["a"], "score_threshold": true}',
        b'{"query": "q", "documents": ["a", "b"], "top_n": true}',
        b'{"query": "q", "documents": ["a", "b"], "top_n": false}',
    ):
        status, body = _raw_post(live, raw)
        assert status == 422, (raw, body)
        assert body["error"]["type"] == "invalid_request"
    status, body = _raw_post(live, b'{"query": "q", "documents": ["a", "b"], "top_n": 1, "score_threshold": 0}')
    assert status == 200 and len(body["results"]) == 1


def test_zero_width_only_query_is_empty(start_server, server_reranker):
    live = start_server(ServerSettings(), server_reranker)
    r = _rerank(live, {"query": "\u200b\u200c\u200d\u2060\ufeff \u200e", "documents": ["a"]})
    assert r.status_code == 422, r.text
    assert "empty" in r.json()["error"]["message"]
    assert _rerank(live, {"query": "\u200bcat", "documents": ["a"]}).status_code == 200


def test_zero_width_only_document_is_its_own_error(start_server, server_reranker):
    """The library's rule over HTTP too: such a document is empty; the others are scored."""
    live = start_server(ServerSettings(), server_reranker)
    r = _rerank(live, {"query": "cat", "documents": ["a cat", "\u200b\u200d\ufeff \n"]})
    assert r.status_code == 200, r.text
    by_index = {x["index"]: x for x in r.json()["results"]}
    assert by_index[0].get("error") is None and "document 1 is empty" in by_index[1]["error"]


def test_empty_document_after_a_failed_one_names_its_own_index(start_server, server_reranker):
    """Request index, not the position among the documents that survived reading."""
    live = start_server(ServerSettings(), server_reranker)
    docs = ["a cat", {"text": "x", "image": "data:image/png;base64,!!!"}, "\u200b \n"]
    r = _rerank(live, {"query": "cat", "documents": docs})
    assert r.status_code == 200, r.text
    by_index = {x["index"]: x for x in r.json()["results"]}
    assert by_index[0].get("error") is None and by_index[1]["error"]
    assert "document 2 is empty" in by_index[2]["error"], by_index[2]


def test_invalid_base64_says_so(start_server, server_reranker, server_images):
    live = start_server(ServerSettings(), server_reranker)
    r = _rerank(live, {"query": "q", "documents": [
        {"image": "data:image/png;base64,!!!!****"}, {"image": "@@@@"}, {"image": data_uri(server_images[0])},
    ]})
    results = {x["index"]: x for x in r.json()["results"]}
    assert "not valid base64" in results[0]["error"], results[0]
    assert "not valid base64" in results[1]["error"], results[1]
    assert "error" not in results[2]


def _raw_http(port: int, head: bytes, body: bytes = b"", read_timeout: float = 15.0) -> tuple[bytes, float]:
    """Send ``head`` + ``body`` on a raw socket; the response bytes and the seconds it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(read_timeout)
        sock.sendall(head + body)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            pass
    return b"".join(chunks), time.monotonic() - started


def test_body_shorter_than_content_length_is_400_after_a_short_wait(start_server, server_reranker):
    live = start_server(ServerSettings(body_timeout_s=1.0), server_reranker)
    body = b'{"query": "q"'
    head = (
        f"POST /v1/rerank HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body) + 100}\r\n\r\n"
    ).encode()
    response, took = _raw_http(live.port, head, body)
    assert response.startswith(b"HTTP/1.1 400"), response[:200]
    assert b"incomplete" in response and took < 10
    with live.client() as c:  # the server is fine afterwards
        assert c.get("/health").status_code == 200


def test_huge_header_is_refused_with_431_before_it_is_read(start_server, server_reranker):
    live = start_server(ServerSettings(api_key="k" * 32), server_reranker)
    total = 20 * 1024 * 1024
    sent = 0
    answer: list[bytes] = []

    with socket.create_connection(("127.0.0.1", live.port)) as sock:

        def read() -> None:
            sock.settimeout(30)
            try:
                while chunk := sock.recv(65536):
                    answer.append(chunk)
            except OSError:
                pass

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        started = time.monotonic()
        try:
            sock.sendall(b"POST /v1/rerank HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ")
            piece = b"x" * 65536
            while sent < total and not answer:
                sock.sendall(piece)
                sent += len(piece)
        except OSError:
            pass  # the server closed the connection: what we want
        reader.join(timeout=30)
        took = time.monotonic() - started
    response = b"".join(answer)
    assert response.startswith(b"HTTP/1.1 431"), response[:200]
    assert json.loads(response.split(b"\r\n\r\n", 1)[1])["error"]["limit"] == "max_header_bytes"
    assert sent < total // 4, sent  # refused long before the 20 MB were sent
    assert took < 10
    with live.client() as c:
        assert c.get("/health").status_code == 200


def test_head_health(start_server, server_reranker):
    live = start_server(ServerSettings(api_key="secret-key-123456"), server_reranker)
    with live.client() as c:
        r = c.head("/health")
        assert r.status_code == 200 and r.content == b""
        assert c.get("/health").json()["status"] == "ok"


# --------------------------------------------------------------------------- lone surrogates
def test_a_lone_surrogate_in_a_text_is_that_items_clear_error(start_server, server_reranker):
    """JSON may spell a lone surrogate ("\\udfff"); it is no Unicode text. A document holding one
    fails alone with a message saying so (it used to fail later with a tokenizer's message);
    a query holding one is refused with 422."""
    live = start_server(ServerSettings(), server_reranker)
    raw = b'{"query": "cat", "documents": ["a cat", "x \\udfff y", {"text": "\\ud800", "image": null}, "a dog"]}'
    with live.client() as c:
        r = c.post("/v1/rerank", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        results = {x["index"]: x for x in r.json()["results"]}
        assert "lone surrogate (U+DFFF) at character 3" in results[1]["error"]
        assert "lone surrogate (U+D800)" in results[2]["error"]
        assert "error" not in results[0] and "error" not in results[3]
        expected = server_reranker.rerank("cat", ["a cat", "a dog"])
        assert {x["index"]: x["relevance_score"] for x in (results[0], results[3])} == pytest.approx(
            {0: expected[0].score if expected[0].index == 0 else expected[1].score,
             3: expected[0].score if expected[0].index == 1 else expected[1].score}, abs=1e-6)
        q = c.post("/v1/rerank", content=b'{"query": "c\\udfffat", "documents": ["a cat"]}',
                   headers={"content-type": "application/json"})
        assert q.status_code == 422, q.text
        assert "unicode" in q.json()["error"]["message"].lower()  # pydantic refuses it in a plain string field
