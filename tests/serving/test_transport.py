"""The HTTP transport under attack (issue 20, items 3, 4, 9 and 10), against live loopback servers.

Raw sockets for what no well-behaved client sends (floods and trickles of trailers, heads that
never finish, more connections than the server has descriptors), httpx for the rest. Every
flood and trickle is bounded in bytes and time.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import httpx
import pytest
from pydantic import ValidationError

from lychee_rerank.serving.settings import ServerSettings
from lychee_rerank.testing.processes import stop_process

from .conftest import free_port

KEY = "transport-key-123"


class RawConnection:
    """A socket to the server with a reader thread: what came back, and whether it was closed."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.received = bytearray()
        self.closed = threading.Event()
        self.closed_at: Optional[float] = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while chunk := self.sock.recv(65536):
                self.received += chunk
        except OSError:
            pass
        self.closed_at = time.monotonic()
        self.closed.set()

    def send(self, data: bytes) -> bool:
        """False once the server has closed the connection."""
        if self.closed.is_set():
            return False
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def status(self) -> Optional[int]:
        return int(self.received[9:12]) if self.received.startswith(b"HTTP/1.1 ") else None

    def error(self) -> dict:
        return json.loads(bytes(self.received).split(b"\r\n\r\n", 1)[1])["error"]

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader (close alone does not)
        except OSError:
            pass
        self.sock.close()
        self._reader.join(timeout=10)


def chunked_head(key: Optional[str]) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (
        "POST /v1/rerank HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{auth}Transfer-Encoding: chunked\r\n\r\n"
    ).encode()


def last_chunk_after(body: bytes) -> bytes:
    """``body`` as one chunk, then the last (empty) chunk: what follows is the trailer section."""
    return f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n"


BODY = json.dumps({"query": "a red bicycle", "documents": ["a bicycle", "a teapot"]}).encode()


# --------------------------------------------------------------------------- item 3: trailers
@pytest.mark.parametrize("key", [KEY, None], ids=["with-key", "without-key"])
def test_a_flood_of_trailers_is_cut_at_the_head_limit(start_server, server_reranker, key):
    """2 GB of trailers were read (RSS +2.1 GB); the trailer section now counts like a head."""
    live = start_server(ServerSettings(api_key=KEY), server_reranker)
    total, sent = 64 * 1024 * 1024, 0  # loopback socket buffers alone take several MB before a send blocks
    line = b"x-pad: " + b"a" * 1000 + b"\r\n"
    piece = line * 64
    conn = RawConnection(live.port)
    try:
        assert conn.send(chunked_head(key) + last_chunk_after(BODY))
        while sent < total and conn.send(piece):
            sent += len(piece)
        assert conn.closed.wait(10), f"still open after {sent:,} bytes of trailers"
    finally:
        conn.close()
    assert sent < total // 4, sent  # closed long before the 64 MB were sent
    if key:  # the request was waiting for its body: it is answered 431, the limit named
        assert conn.status() == 431, bytes(conn.received[:300])
        assert conn.error()["limit"] == "max_header_bytes"
    else:  # answered 401 at once, then the connection is closed
        assert conn.status() == 401, bytes(conn.received[:300])
    with live.client() as c:
        assert c.get("/health").status_code == 200


@pytest.mark.parametrize("key", [KEY, None], ids=["with-key", "without-key"])
def test_trailers_trickled_a_line_at_a_time_time_out(start_server, server_reranker, key):
    """One trailer line every 0.2 s held the connection for as long as it went on."""
    live = start_server(ServerSettings(api_key=KEY, head_timeout_s=1.0, body_timeout_s=30), server_reranker)
    conn = RawConnection(live.port)
    try:
        assert conn.send(chunked_head(key) + last_chunk_after(BODY))
        started = time.monotonic()
        while time.monotonic() - started < 8 and conn.send(b"x-slow: 1\r\n"):
            time.sleep(0.2)
        assert conn.closed.wait(5)
        took = conn.closed_at - started  # type: ignore[operator]
    finally:
        conn.close()
    assert took < 4, took  # the 1 s head timeout, plus slack for a loaded machine
    if key:
        assert conn.status() == 408 and conn.error()["limit"] == "head_timeout_s", bytes(conn.received[:300])
    else:
        assert conn.status() == 401


def test_a_chunked_body_with_small_trailers_scores_as_usual(start_server, server_reranker):
    """Within the limits trailers are allowed (and ignored): the request is answered normally."""
    live = start_server(ServerSettings(api_key=KEY), server_reranker)
    conn = RawConnection(live.port)
    try:
        assert conn.send(chunked_head(KEY) + last_chunk_after(BODY) + b"x-checksum: abc\r\nauthorization: x\r\n\r\n")
        deadline = time.monotonic() + 60
        while b"\r\n\r\n" not in conn.received and time.monotonic() < deadline:
            time.sleep(0.02)
        head, _, _ = bytes(conn.received).partition(b"\r\n\r\n")
        length = int(next(v for k, _, v in (h.partition(b": ") for h in head.split(b"\r\n")) if k.lower() == b"content-length"))
        while len(conn.received) < len(head) + 4 + length and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        conn.close()
    assert conn.status() == 200, bytes(conn.received[:300])
    results = json.loads(bytes(conn.received)[len(head) + 4:])["results"]
    with live.client(headers={"Authorization": f"Bearer {KEY}"}) as c:
        expected = c.post("/v1/rerank", content=BODY, headers={"Content-Type": "application/json"}).json()["results"]
    assert [(r["index"], r["relevance_score"]) for r in results] == [(r["index"], r["relevance_score"]) for r in expected]


# --------------------------------------------------------------------------- item 4: heads
def test_idle_and_unfinished_heads_are_closed_after_the_head_timeout(start_server, server_reranker):
    """Connections that send nothing, half a head, or a head one byte at a time were held forever."""
    live = start_server(ServerSettings(head_timeout_s=1.0), server_reranker)
    partial = b"POST /v1/rerank HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    kinds: dict[str, list[RawConnection]] = {"idle": [], "partial": [], "dribble": []}
    started = time.monotonic()
    try:
        for _ in range(20):
            for kind, conns in kinds.items():
                conn = RawConnection(live.port)
                if kind == "partial":
                    conn.send(partial)
                elif kind == "dribble":
                    conn.send(partial + b"x-slow: ")
                conns.append(conn)
        everyone = [c for conns in kinds.values() for c in conns]
        while time.monotonic() - started < 8 and not all(c.closed.is_set() for c in everyone):
            for conn in kinds["dribble"]:  # a byte every 0.2 s: never idle, never done
                conn.send(b"a")
            time.sleep(0.2)
        with live.client(timeout=5) as c:
            assert c.get("/health").status_code == 200
        still_open = {kind: sum(not c.closed.is_set() for c in conns) for kind, conns in kinds.items()}
    finally:
        for conns in kinds.values():
            for conn in conns:
                conn.close()
    assert not any(still_open.values()), f"connections still open after 8 s: {still_open}"
    for kind, conns in kinds.items():
        slowest = max(c.closed_at for c in conns) - started  # type: ignore[operator, type-var]
        assert slowest < 5, (kind, slowest)  # 1 s, plus slack for a loaded machine
        for conn in conns:
            if kind == "idle":  # nothing was asked: nothing is answered
                assert conn.received == b""
            else:
                assert conn.status() == 408 and conn.error()["limit"] == "head_timeout_s", bytes(conn.received[:200])


def _health(url: str, timeout: float) -> Optional[int]:
    try:
        return httpx.get(f"{url}/health", timeout=timeout).status_code
    except httpx.TransportError:
        return None


def test_lychee_serve_outlasts_more_idle_connections_than_it_has_descriptors(server_model_dir: Path, tmp_path: Path):
    """With 1,024 descriptors, 1,008 unfinished heads made /health fail; now they time out.

    `lychee serve` also raises its soft limit on descriptors to the hard one (here 160)."""
    fds = 160
    port = free_port()

    def few_descriptors() -> None:  # `lychee serve` raises the soft limit to the hard one
        resource.setrlimit(resource.RLIMIT_NOFILE, (100, fds))

    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lychee_rerank.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--backend", "lychee", "--model", str(server_model_dir), "--device", "cpu", "--dtype", "float32",
         "--log-level", "warning"],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "LYCHEE_HEAD_TIMEOUT_S": "1"},
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=few_descriptors,
    )
    url = f"http://127.0.0.1:{port}"
    socks: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 120
        while _health(url, 5) != 200:  # loaded: the model's files are read before the flood
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        for _ in range(fds + 40):  # more than the server can hold open at once
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        started = time.monotonic()
        statuses = []  # at the limit a new connection waits, or is accepted and closed at once (libuv)
        while time.monotonic() - started < 10 and 200 not in statuses:
            statuses.append(_health(url, 2))
        took = time.monotonic() - started
        assert 200 in statuses, (statuses, (tmp_path / "serve.log").read_text()[-2000:])
        assert took < 6, statuses  # the 1 s head timeout frees the descriptors, plus slack
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        assert [line.split()[3:5] for line in limits.splitlines() if line.startswith("Max open files")] == [[str(fds)] * 2]
    finally:
        for sock in socks:
            sock.close()
        stop_process(proc)
        log.close()


# --------------------------------------------------------------------------- item 9: JSON structure
def _tiny_parts(n: int) -> bytes:
    part = b'{"type":"text","text":"a"}'
    return b'{"query":"q","documents":{"content":[' + b",".join([part] * n) + b"]}}"


def _health_latencies_during(live, request) -> tuple[list[float], httpx.Response]:
    """Runs ``request`` in a thread while probing /health; returns the probes' latencies and its response."""
    outcome: dict[str, httpx.Response] = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("response", request()), daemon=True)
    latencies = []
    with live.client(timeout=30) as c:
        c.get("/health")  # connection open before the attack
        worker.start()
        while worker.is_alive():
            started = time.monotonic()
            assert c.get("/health").status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)
    worker.join(timeout=120)
    return latencies, outcome["response"]


def test_a_body_of_a_million_tiny_parts_is_refused_without_holding_health(start_server, server_reranker):
    """1.9 M tiny content parts (59 MB) held /health 8.3 s before their 413: the items are now
    counted in a thread, and a body over max_json_values is refused before it is parsed."""
    live = start_server(ServerSettings(), server_reranker)
    body = _tiny_parts(1_000_000)  # 27 MB, under max_request_bytes

    def attack() -> httpx.Response:
        with live.client(timeout=120) as c:
            return c.post("/v1/rerank", content=body, headers={"Content-Type": "application/json"})

    latencies, response = _health_latencies_during(live, attack)
    assert response.status_code == 413, response.text[:300]
    error = response.json()["error"]
    assert error["limit"] == "max_json_values" and error["max"] == 32_000  # 32 per allowed document
    assert max(latencies) < 1, max(latencies)


def test_the_largest_structure_allowed_is_parsed_without_holding_health(start_server, server_reranker):
    """Just under the limit the body is parsed and validated, on the loop: that cost is bounded."""
    live = start_server(ServerSettings(), server_reranker)
    body = _tiny_parts(10_600)  # 31,803 items: allowed; 10,600 documents are then over max_documents

    def near_limit() -> httpx.Response:
        with live.client(timeout=120) as c:
            return c.post("/v1/rerank", content=body, headers={"Content-Type": "application/json"})

    latencies, response = _health_latencies_during(live, near_limit)
    assert response.status_code == 413 and response.json()["error"]["limit"] == "max_documents", response.text[:300]
    assert max(latencies) < 1, max(latencies)


def test_max_json_values_counts_items_not_bytes(start_server, server_reranker):
    live = start_server(ServerSettings(max_json_values=200), server_reranker)
    with live.client() as c:
        long_texts = {"query": "q", "documents": ["a, [b], {c}, \"d\" " * 300, "e"]}  # commas in strings are text
        assert c.post("/v1/rerank", json=long_texts).status_code == 200
        many = {"query": "q", "documents": [[{"type": "text", "text": "a"}] * 70]}
        r = c.post("/v1/rerank", json=many)
        assert r.status_code == 413 and r.json()["error"]["limit"] == "max_json_values", r.text


@pytest.mark.parametrize(
    "text, count",
    [
        (b'{"a": [1, 2, 3], "b": {"c": null}}', 6),  # { [ , , , {
        (b'["a,b", "[{", "\\"],[", "\\\\", 1]', 5),  # structure inside strings (escapes included) is text
        (b'["unterminated, [ {', 1),
        (b'"\\', 0),
        (b"", 0),
    ],
)
def test_count_json_values(text, count):
    from lychee_rerank.serving.middleware import count_json_values

    assert count_json_values(text, 100) == count


def test_count_json_values_stops_past_the_limit():
    from lychee_rerank.serving.middleware import count_json_values

    assert count_json_values(b"[" + b"1," * 1_000_000 + b"1]", 10) == 11
    # A body of nothing but strings counts no item, yet is no cheap JSON: refused past two
    # strings an item (it used to be scanned to its end, 20 s for 40 MB).
    assert count_json_values(b'""' * 1_000_000, 10) == 11


@pytest.mark.parametrize("window", [3, 4, 5, 1 << 20])
def test_count_json_values_reads_strings_a_window_at_a_time(monkeypatch, window):
    """Long strings and gaps are read in windows (no one call holds the GIL for a whole 60 MB
    string); a window that ends inside an escape must not end the string there."""
    from lychee_rerank.serving import middleware

    monkeypatch.setattr(middleware, "_WINDOW", window)
    for text, count in [(b'["ab\\"cd,",1,2]', 3), (b'["abc\\\\",1]', 2), (b'["\\"\\"\\"",[1]]', 3),
                        (b'{"a": "' + b"x" * 50 + b'", "b": [1, 2]}', 4), (b"[" + b"7" * 50 + b", 1]", 2)]:
        assert middleware.count_json_values(text, 100) == count, (text, window)


# --------------------------------------------------------------------------- item 10: API keys
@pytest.mark.parametrize("key", ["clé-ü", "密钥", "ключ с пробелом"])
def test_a_key_in_any_language_matches_a_client_sending_utf8(start_server, server_reranker, key):
    live = start_server(ServerSettings(api_key=key), server_reranker)
    body = {"query": "q", "documents": ["d"]}
    with live.client() as c:
        ok = c.post("/v1/rerank", json=body, headers={"Authorization": b"Bearer " + key.encode("utf-8")})
        assert ok.status_code == 200, ok.text
        try:  # what requests (http.client) sends for a str header: still accepted
            latin = c.post("/v1/rerank", json=body, headers={"Authorization": b"Bearer " + key.encode("latin-1")})
            assert latin.status_code == 200, latin.text
        except UnicodeEncodeError:
            pass
        assert c.post("/v1/rerank", json=body, headers={"Authorization": b"Bearer " + key[:-1].encode()}).status_code == 401
    # What curl sends from a UTF-8 terminal: the bytes as they are.
    payload = json.dumps(body).encode()
    conn = RawConnection(live.port)
    try:
        conn.send(
            b"POST /v1/rerank HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAuthorization: Bearer "
            + key.encode() + b"\r\nConnection: close\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )
        assert conn.closed.wait(60)
    finally:
        conn.close()
    assert conn.status() == 200, bytes(conn.received[:300])


@pytest.mark.parametrize(
    "key, says",
    [("", "is empty"), ("  ", "is empty"), (" padded", "space or tab"), ("padded ", "space or tab"), ("tab\t", "space or tab"),
     ("line\nbreak", "U+000A"), ("nul\x00", "U+0000"), ("del\x7f", "U+007F")],
)
def test_a_key_no_client_can_send_is_refused_in_settings(key, says):
    with pytest.raises(ValidationError) as caught:
        ServerSettings(api_key=key)
    assert says in str(caught.value)


def test_lychee_serve_refuses_an_unsendable_key_with_exit_2():
    port = free_port()
    out = subprocess.run(
        [sys.executable, "-m", "lychee_rerank.cli", "serve", "--api-key", "secret ", "--port", str(port)],
        capture_output=True, text=True, timeout=30,  # refused before anything heavy is imported
    )
    assert out.returncode == 2, out.stderr[-2000:]
    message = " ".join(out.stderr.split())  # rich wraps long lines
    assert "api_key" in message and "space or tab" in message
    assert "secret" not in message  # the key itself is never printed
