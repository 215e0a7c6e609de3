"""Bounded load run of `lychee serve` on loopback: N concurrent clients for D seconds.

Usage:
  python benchmarks/http_load.py [--backend lite|lychee] [--model DIR] [--clients 16] [--duration 30]
                                 [--docs 8] [--images 0] [--invalid 0.2] [--abandon 0.1]
                                 [--attacks 0.2] [--allow-urls]

Starts `lychee serve` as a subprocess on 127.0.0.1 (a free port), waits for /health, then runs
the clients (threads, one httpx connection each) against POST /v1/rerank. Every response is
checked: status 200, JSON, one result per document, indexes a permutation, scores in 0-1 and
sorted. Prints requests/s, p50/p90/p99 latency and counts of lost (transport error) and
malformed responses, then stops the server. Only loopback traffic; the run is bounded in time.

``--invalid F`` makes a fraction F of the requests hostile or careless (NaN threshold, boolean
top_n, empty or zero-width query, broken JSON, bad base64, a path with a NUL byte): each must
get its expected status with a JSON error body (or, for a bad document, a 200 in which only
that document failed). ``--abandon F`` makes a fraction F long requests whose client gives up
after 0.3 s (the server must stop that work at its next batch boundary); they are counted
apart, not as lost. ``--attacks F`` mixes in a fraction F of the attacks of issue 20 (see
:data:`ATTACKS`: a backtracking-prone image string, tiny files that decode to 36 M pixels, bodies
of many tiny parts below and above the limits, deep nesting, chunked trailers below and above the
head limit, request heads left incomplete, a 1x100000 query image, a bad URL host with
``--allow-urls``, long Chinese documents given up after 2 s), each bounded in size and checked
for its expected answer; the table gives per-attack counts. The server's RSS is sampled every
second (start, peak, end: memory must stay flat) and /health is polled every 0.1 s (its worst
latency shows whether an attack froze the event loop). The machine's load average is printed
before and after. The run exits 1 on any 5xx, lost, malformed or mismatched answer.
Without --model and with --backend lychee, the tiny random checkpoint is built and served.
"""

from __future__ import annotations

import argparse
import base64
import functools
import io
import itertools
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import httpx
import numpy as np
from PIL import Image

from lychee_rerank.testing.processes import stop_process

TEXTS = [
    "a black cat sleeping on a window sill", "a red car parked by the road", "coffee cup on a wooden table",
    "the quick brown fox jumps over the lazy dog", "一只黑猫趴在窗台上", "astronaut next to a rocket",
    "a dog running in the park", "product photo of white sneakers", "a bowl of ramen", "city skyline at night",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo_b64(seed: int) -> str:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def check(body: dict, n_docs: int) -> str | None:
    """Why a 200 response is malformed, or None."""
    results = body.get("results")
    if not isinstance(results, list) or len(results) != n_docs:
        return f"expected {n_docs} results, got {type(results).__name__} {len(results) if isinstance(results, list) else ''}"
    if sorted(r.get("index") for r in results) != list(range(n_docs)):
        return "indexes are not a permutation"
    scores = [r.get("relevance_score") for r in results if "error" not in r]
    if any(not isinstance(s, float) or not 0.0 <= s <= 1.0 for s in scores):
        return "score outside 0-1"
    if scores != sorted(scores, reverse=True):
        return "not sorted"
    if any("error" in r for r in results):
        return "a document failed: " + str(next(r["error"] for r in results if "error" in r))[:120]
    return None


#: (name, raw JSON body, the statuses that are right for it, index of the document that must fail alone).
INVALID: list[tuple[str, bytes, set[int], int | None]] = [
    ("nan threshold", b'{"query": "cat", "documents": ["a"], "score_threshold": NaN}', {422}, None),
    ("bool top_n", b'{"query": "cat", "documents": ["a", "b"], "top_n": true}', {422}, None),
    ("empty query", b'{"query": "", "documents": ["a"]}', {422}, None),
    ("zero-width query", '{"query": "\u200b\u200d\ufeff", "documents": ["a"]}'.encode(), {422}, None),
    ("broken json", b'{"query": "cat", "documents": [', {400, 422}, None),
    ("no documents field", b'{"query": "cat"}', {422}, None),
    ("bad base64", b'{"query": "cat", "documents": ["a", {"image": "data:image/png;base64,!!!!"}]}', {200}, 1),
    ("nul path", b'{"query": "cat", "documents": [{"image": "x\\u0000y"}, "b"]}', {200}, 0),
]


def check_invalid(r: httpx.Response, expected: set[int], failing: int | None) -> str | None:
    """Why the answer to a hostile request is wrong, or None."""
    if r.status_code not in expected:
        return f"status {r.status_code}, expected {sorted(expected)}"
    try:
        body = r.json()
    except ValueError:
        return "not JSON"
    if failing is None:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or not error.get("message") or not error.get("type"):
            return "no JSON error body"
        return None
    results = {x.get("index"): x for x in body.get("results", [])}
    if "error" not in results.get(failing, {}):
        return "the bad document did not fail"
    if any("error" in x for i, x in results.items() if i != failing):
        return "a good document failed"
    return None


# ---------------------------------------------------------------- the attacks of issue 20 (round 2)
# Builders of the hostile bodies, shared with tests/serving/test_liveness.py. Each is small on
# the wire (at most a few MB, except `parts_body` at the size the caller asks for).

#: Common Chinese characters: long documents in the language the lite backend's e5 reads slowest.
CHINESE = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行"
    "学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前"
    "外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军"
    "很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别"
)


def regex_image_body(spaces: int = 100_000) -> bytes:
    """A document whose image string is ``"A" + spaces + "!"`` (item 1): no valid form, but a
    backtracking base64 pattern spends time quadratic in its length deciding so."""
    return json.dumps({"query": "cat", "documents": ["a", {"image": "A" + " " * spaces + "!"}]}).encode()


@functools.lru_cache(maxsize=None)
def tiny_file_image(width: int = 6000, height: int = 6000) -> str:
    """A data URI of a solid-colour lossless WebP (item 2): ~1.4 KB sent, width x height x 3 bytes decoded."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 40)).save(buf, format="WEBP", lossless=True)
    return "data:image/webp;base64," + base64.b64encode(buf.getvalue()).decode()


def pixel_bomb_body(copies: int = 40, with_text: bool = False) -> bytes:
    """``copies`` documents of :func:`tiny_file_image` (40 of them: a 76 KB request of 1.4 G pixels),
    after one text document when ``with_text`` (it must be scored whatever happens to the images)."""
    docs: list = ["a black cat"] if with_text else []
    docs += [{"image": tiny_file_image()}] * copies
    return json.dumps({"query": "cat", "documents": docs}).encode()


def parts_body(documents: int, parts: int) -> bytes:
    """``documents`` documents of ``parts`` one-letter text parts each (item 9): 31 bytes a part, so
    1,000 x 1,900 parts is a 59 MB body of 1.9 M JSON objects. Built by joining bytes, not json.dumps."""
    part = b'{"type": "text", "text": "a"}'
    doc = b"[" + b", ".join([part] * parts) + b"]"
    return b'{"query": "cat", "documents": [' + b", ".join([doc] * documents) + b"]}"


def deep_body(depth: int) -> bytes:
    """A document nested ``depth`` lists deep: a recursive JSON parser's stack against a 1 KB body."""
    return b'{"query": "cat", "documents": ["a", ' + b"[" * depth + b"]" * depth + b"]}"


def chinese_body(documents: int = 16, chars: int = 4096, seed: int = 0) -> bytes:
    """``documents`` Chinese documents of ``chars`` characters each (item 8: 12.9 s each for lite's
    e5 when embedded whole, although the model reads 512 tokens)."""
    rng = random.Random(seed)
    docs = ["".join(rng.choices(CHINESE, k=chars)) for _ in range(documents)]
    return json.dumps({"query": "一只黑猫", "documents": docs}, ensure_ascii=False).encode()


@functools.lru_cache(maxsize=None)
def thin_image_uri(width: int = 1, height: int = 100_000) -> str:
    """A data URI of a grey 1 x 100000 PNG (277 bytes): within the pixel limit, no valid resize."""
    buf = io.BytesIO()
    Image.new("L", (width, height), 128).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def thin_query_body() -> bytes:
    """A query that is only a 1 x 100000 image (item 7): the lychee model cannot read it (422)."""
    return json.dumps({"query": {"image": thin_image_uri()}, "documents": ["a", "b"]}).encode()


#: Image URLs whose host is refused before any name lookup (item 5): an empty label, a label of
#: 64 characters (63 at most), a soft hyphen (no IDNA form).
BAD_URL_HOSTS = ["http://a..b/x.png", "http://" + "a" * 64 + ".com/x.png", "http://a\u00adb.com/x.png"]


def bad_url_body(url: str) -> bytes:
    return json.dumps({"query": "cat", "documents": ["a", {"image": url}]}).encode()


def raw_request(port: int, data: bytes, timeout_s: float = 15.0) -> tuple[Optional[int], bytes]:
    """Send hand-built request bytes over a plain socket and read until the server closes (or the
    timeout): (status of the first response or None, what came back). A server that refuses the
    request part-way may reset the connection while we still send; its answer is read all the same."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        try:
            while chunk := s.recv(65536):
                received += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    status = None
    if received.startswith(b"HTTP/1.1 "):
        status = int(received[9:12])
    return status, received


def chunked_with_trailers(port: int, trailer_bytes: int) -> tuple[Optional[int], bytes]:
    """A valid two-document request sent chunked, followed by ``trailer_bytes`` of trailer header
    lines (item 3: the head limit must cover trailers; 2 GB of them were accepted)."""
    body = b'{"query": "cat", "documents": ["a", "b"]}'
    line = b"X-Pad: " + b"a" * 1017 + b"\r\n"  # 1 KiB a line
    data = (
        b"POST /v1/rerank HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n"
        + line * (trailer_bytes // len(line)) + b"\r\n"
    )
    return raw_request(port, data)


def incomplete_head(port: int, hold_s: float) -> bytes:
    """Open a connection, send a request head without its end, wait ``hold_s``, then hang up (item 4).
    Returns whatever the server said meanwhile (nothing, or an error if it timed the head out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=hold_s) as s:
        s.sendall(b"POST /v1/rerank HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        received = b""
        deadline = time.monotonic() + hold_s
        try:
            while (left := deadline - time.monotonic()) > 0:
                s.settimeout(left)
                chunk = s.recv(4096)
                if not chunk:
                    break
                received += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    return received


# ---------------------------------------------------------------- attack mix for the load run


@dataclass
class Outcome:
    """What one attack got: its status (None without a response), why it is wrong (None when right),
    whether the client gave up on purpose, and whether the transport failed (lost)."""

    status: Optional[int] = None
    problem: Optional[str] = None
    abandoned: bool = False
    lost: bool = False


def _post(c: httpx.Client, body: bytes, timeout: float = 120.0) -> httpx.Response:
    return c.post("/v1/rerank", content=body, headers={"content-type": "application/json"}, timeout=timeout)


def _expect(r: httpx.Response, statuses: set[int], failing: Optional[int] = None) -> Outcome:
    return Outcome(r.status_code, check_invalid(r, statuses, failing))


def _all_scored(r: httpx.Response, n_docs: int) -> Outcome:
    """A 200 in which every one of ``n_docs`` documents is scored."""
    if r.status_code != 200:
        return Outcome(r.status_code, f"status {r.status_code}, expected 200")
    return Outcome(200, check(r.json(), n_docs))


def _thin_query(c: httpx.Client, port: int) -> Outcome:
    """A 1x100000 query image: 422 where the backend cannot read it (the model's aspect-ratio
    limit), or a 200 with every document scored where it can (lite); never a 200 of failures."""
    r = _post(c, thin_query_body())
    return _expect(r, {422}) if r.status_code != 200 else _all_scored(r, 2)




def _trailers(trailer_bytes: int, statuses: set[int]) -> Callable[[httpx.Client, int], Outcome]:
    def attack(c: httpx.Client, port: int) -> Outcome:
        status, raw = chunked_with_trailers(port, trailer_bytes)
        if status not in statuses:
            return Outcome(status, f"status {status}, expected {sorted(statuses)}: {raw[:80]!r}")
        payload = raw.partition(b"\r\n\r\n")[2]
        try:
            json.loads(payload)
        except ValueError:
            return Outcome(status, "not JSON")
        return Outcome(status)

    return attack


def _abandoned_head(c: httpx.Client, port: int) -> Outcome:
    """A head left incomplete for 0.5 s, then abandoned: the server owes no answer, only no 5xx."""
    said = incomplete_head(port, hold_s=0.5)
    status = int(said[9:12]) if said.startswith(b"HTTP/1.1 ") else None
    return Outcome(status, f"answered {said[:60]!r}" if status is not None and status >= 500 else None)


def _abandoned_chinese(c: httpx.Client, port: int) -> Outcome:
    """16 long Chinese documents, given up after 2 s; if answered first, every document is scored."""
    try:
        r = _post(c, chinese_body(), timeout=2.0)
    except httpx.TimeoutException:
        return Outcome(abandoned=True)
    if r.status_code != 200:
        return Outcome(r.status_code, f"status {r.status_code}, expected 200")
    return Outcome(200, check(r.json(), 16))


@dataclass(frozen=True)
class Attack:
    name: str
    run: Callable[[httpx.Client, int], Outcome]
    needs_urls: bool = False


#: The round-2 attacks and their expected answers (one more, sized by the server's limits, is added
#: by :func:`attacks_for`).
ATTACKS: list[Attack] = [
    Attack("regex image 100k", lambda c, port: _expect(_post(c, regex_image_body(100_000)), {200}, 1)),
    Attack("regex image 30k", lambda c, port: _expect(_post(c, regex_image_body(30_000)), {200}, 1)),
    # within the per-image pixel limit: scored (decoded one batch at a time), like the text before them
    Attack("6000x6000 tiny files x3", lambda c, port: _all_scored(_post(c, pixel_bomb_body(3, with_text=True)), 4)),
    Attack("parts 4x200 (below)", lambda c, port: _all_scored(_post(c, parts_body(4, 200)), 4)),
    Attack("deep nesting 100k", lambda c, port: _expect(_post(c, deep_body(100_000)), {400, 413, 422})),
    Attack("trailers 1 KiB", _trailers(1024, {200})),
    Attack("trailers 256 KiB", _trailers(256 * 1024, {400, 431})),
    Attack("incomplete head", _abandoned_head),
    Attack("1x100000 query image", _thin_query),
    Attack("chinese 16x4096 abandoned", _abandoned_chinese),
    *(
        Attack(f"bad URL host {i + 1}", (lambda u: lambda c, port: _expect(_post(c, bad_url_body(u)), {200}, 1))(url),
               needs_urls=True)
        for i, url in enumerate(BAD_URL_HOSTS)
    ),
]


def attacks_for(allow_urls: bool, settings: Any) -> list[Attack]:
    """The attacks that apply to a server with these ``ServerSettings``, with a body of one
    document whose parts are just over its limit on JSON values (3 a part: an array element and
    two members), counted before parsing."""
    # Code from before issue 20 has no such limit: it gets the same body as today's default.
    limit = getattr(settings, "json_values_limit", 32 * settings.max_documents)
    parts = limit // 3 + 1
    over = Attack(f"parts 1x{parts} (over)", lambda c, port: _expect(_post(c, parts_body(1, parts)), {413}))
    return [a for a in ATTACKS if allow_urls or not a.needs_urls] + [over]


# ---------------------------------------------------------------- the server, its health and memory


class ServedProcess:
    """``lychee serve`` as a subprocess on a free loopback port, its stderr in a file (a pipe
    nobody reads would block a chatty server)."""

    def __init__(self, backend: str, model: Optional[str] = None, flags: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "lychee_rerank.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                    "--backend", backend, "--log-level", "warning", *flags]
        if model:
            self.cmd += ["--model", model, "--device", "cpu", "--dtype", "float32"]
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc: Optional[subprocess.Popen] = None

    def start(self, ready_timeout_s: float = 300) -> "ServedProcess":
        """Start it and wait until /health says it is ready."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LYCHEE_")}
        env.setdefault("HF_HUB_OFFLINE", "1")
        self.proc = subprocess.Popen(self.cmd, env=env, stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + ready_timeout_s
        while not self.answers():
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.stderr()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server not ready after {ready_timeout_s:.0f} s")
            time.sleep(0.2)
        return self

    def answers(self, timeout_s: float = 5.0) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=timeout_s).status_code == 200
        except httpx.HTTPError:
            return False

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGINT (graceful), then SIGKILL after ``grace_s`` (a server stuck holding the GIL cannot
        run its signal handler)."""
        if self.proc is not None:
            stop_process(self.proc, grace_s)
        self.log.close()

    def __enter__(self) -> "ServedProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class HealthPoller:
    """Polls GET /health every ``every_s`` from its own thread (own connection, ``timeout_s`` each):
    the latencies it saw and the polls that failed. The event loop's liveness, measured from outside."""

    url: str
    every_s: float = 0.1
    timeout_s: float = 2.0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=self.timeout_s) as c:
            while not self._stop.is_set():
                started = time.perf_counter()
                try:
                    status = c.get("/health").status_code
                    if status != 200:
                        self.failures.append(f"status {status}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__} after {time.perf_counter() - started:.1f} s")
                self.latencies.append(time.perf_counter() - started)
                self._stop.wait(max(0.0, self.every_s - (time.perf_counter() - started)))

    @property
    def worst_s(self) -> float:
        return max(self.latencies, default=float("nan"))

    def __enter__(self) -> "HealthPoller":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + 1)


class RssSampler:
    """The server process's resident memory, sampled every ``every_s`` from its own thread."""

    def __init__(self, pid: int, every_s: float = 1.0) -> None:
        import psutil

        self.process = psutil.Process(pid)
        self.every_s = every_s
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        self.samples.append(self.process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def __enter__(self) -> "RssSampler":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every_s + 1)
        self.sample()

    def summary(self) -> str:
        """Start, peak and end, and the course in quarters: flat is a plateau, not a climb to the end."""
        mb = [s / 2**20 for s in self.samples]
        quarters = " / ".join(f"{mb[min(len(mb) - 1, len(mb) * q // 4)]:.0f}" for q in (1, 2, 3))
        return (f"server RSS start {mb[0]:.0f} MB, peak {max(mb):.0f} MB, end {mb[-1]:.0f} MB "
                f"(at 1/4, 1/2, 3/4 of the run: {quarters} MB; {len(mb)} samples, 1 s apart)")


# ---------------------------------------------------------------- the clients


def client(
    url: str, stop_at: float, payloads: list[dict], out: dict, lock: threading.Lock, seed: int,
    invalid: float = 0.0, abandon: float = 0.0, long_payload: dict | None = None,
    attacks: float = 0.0, attack_list: Sequence[Attack] = (), turn: Optional[Iterator[int]] = None,
) -> None:
    """One client until ``stop_at``: valid, hostile, abandoned requests and attacks, each checked.

    Attacks are taken in turn from ``turn`` (a counter shared by the clients); past ``stop_at`` a
    client keeps taking them only until every attack has been sent once, so a short run on a slow
    machine still covers the list (a bounded overrun: one pass, split across the clients)."""
    latencies, statuses, lost, malformed = [], {}, 0, []
    rng = random.Random(seed)
    counts = {"valid": 0, "invalid": 0, "abandoned": 0, "abandoned_answered": 0, "attacks": 0}
    per_attack: dict[str, dict[str, int]] = {}
    port = int(url.rsplit(":", 1)[1])
    turn = turn or itertools.count()

    def attack_once(attack: Attack) -> None:
        nonlocal lost
        counts["attacks"] += 1
        tally = per_attack.setdefault(attack.name, dict.fromkeys(("sent", "expected", "mismatched", "lost", "abandoned", "5xx"), 0))
        tally["sent"] += 1
        try:  # its own connection: an attack may leave its connection closed or unusable
            with httpx.Client(base_url=url, timeout=120) as own:
                outcome = attack.run(own, port)
        except (httpx.HTTPError, OSError) as exc:
            outcome = Outcome(problem=f"transport {type(exc).__name__}", lost=True)
        if outcome.status is not None:
            statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
            tally["5xx"] += outcome.status >= 500
        if outcome.lost:
            lost += 1
            tally["lost"] += 1
            malformed.append(f"{attack.name}: {outcome.problem}")
        elif outcome.abandoned:
            tally["abandoned"] += 1
        elif outcome.problem:
            tally["mismatched"] += 1
            malformed.append(f"{attack.name}: {outcome.problem}")
        else:
            tally["expected"] += 1

    with httpx.Client(base_url=url, timeout=120) as c:
        i = seed
        while True:
            if time.monotonic() >= stop_at:
                k = next(turn) if attack_list else len(attack_list)
                if k >= len(attack_list):  # every attack has been sent at least once
                    break
                attack_once(attack_list[k])
                continue
            draw = rng.random()
            if long_payload is not None and draw < abandon:
                counts["abandoned"] += 1
                try:  # its own connection, closed by the client after 0.3 s
                    with httpx.Client(base_url=url, timeout=0.3) as impatient:
                        impatient.post("/v1/rerank", json=long_payload)
                    counts["abandoned_answered"] += 1
                except httpx.TimeoutException:
                    pass
                except httpx.HTTPError as exc:
                    lost += 1
                    malformed.append(f"abandoned: transport {type(exc).__name__}")
                continue
            if attack_list and draw < abandon + attacks:
                attack_once(attack_list[next(turn) % len(attack_list)])
                continue
            if draw < abandon + attacks + invalid:
                name, raw, expected, failing = INVALID[rng.randrange(len(INVALID))]
                counts["invalid"] += 1
                try:
                    r = c.post("/v1/rerank", content=raw, headers={"content-type": "application/json"})
                except httpx.HTTPError as exc:
                    lost += 1
                    malformed.append(f"transport ({name}): {type(exc).__name__}")
                    continue
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                problem = check_invalid(r, expected, failing)
                if problem:
                    malformed.append(f"{name}: {problem}")
                continue
            counts["valid"] += 1
            payload = payloads[i % len(payloads)]
            i += 1
            started = time.perf_counter()
            try:
                r = c.post("/v1/rerank", json=payload)
            except httpx.HTTPError as exc:
                lost += 1
                malformed.append(f"transport: {type(exc).__name__}")
                continue
            latencies.append(time.perf_counter() - started)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code == 200:
                try:
                    problem = check(r.json(), len(payload["documents"]))
                except ValueError:
                    problem = "not JSON"
                if problem:
                    malformed.append(problem)
    with lock:
        for k, v in counts.items():
            out["kinds"][k] = out["kinds"].get(k, 0) + v
        for name, tally in per_attack.items():
            total = out["attacks"].setdefault(name, dict.fromkeys(tally, 0))
            for k, v in tally.items():
                total[k] += v
        out["latencies"].extend(latencies)
        out["lost"] += lost
        out["malformed"].extend(malformed)
        for k, v in statuses.items():
            out["statuses"][k] = out["statuses"].get(k, 0) + v


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="lite", choices=["lite", "lychee"])
    parser.add_argument("--model", default=None)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--docs", type=int, default=8)
    parser.add_argument("--images", type=int, default=0, help="Image documents among --docs.")
    parser.add_argument("--invalid", type=float, default=0.0, help="Fraction of hostile/careless requests.")
    parser.add_argument("--abandon", type=float, default=0.0, help="Fraction of long requests given up after 0.3 s.")
    parser.add_argument("--attacks", type=float, default=0.0, help="Fraction of issue-20 attacks (see ATTACKS).")
    parser.add_argument("--allow-urls", action="store_true", help="Serve with --allow-urls (adds the bad-URL attacks).")
    args = parser.parse_args(argv)
    if args.clients > 64 or args.duration > 600:
        sys.exit("bounded run: at most 64 clients and 600 s")

    tmp = tempfile.TemporaryDirectory()
    model = args.model
    if args.backend == "lychee" and model is None:
        from lychee_rerank.testing.tiny_model import build

        model = str(build(Path(tmp.name) / "tiny"))
    started = time.monotonic()
    server = ServedProcess(args.backend, model, ["--allow-urls"] if args.allow_urls else [])
    try:
        server.start()
        url = server.url
        info = httpx.get(f"{url}/health").json()
        print(f"server ready in {time.monotonic() - started:.1f} s: {info['backend']} / {info['model']}")

        images = [photo_b64(i) for i in range(args.images)]
        payloads = []
        for p in range(8):
            docs: list = [TEXTS[(p + j) % len(TEXTS)] for j in range(args.docs - args.images)]
            docs += [{"text": "photo", "image": im} for im in images]
            payloads.append({"query": TEXTS[p % len(TEXTS)], "documents": docs})
        # warm-up (first requests pay one-time costs: lite loads its image models on the first image),
        # not counted, so that the RSS at the start is the loaded server's
        warm_up = {"query": TEXTS[0], "documents": [{"text": "photo", "image": photo_b64(0)}]}
        with httpx.Client(base_url=url, timeout=120) as c:
            for payload in [*payloads[:2], warm_up]:
                c.post("/v1/rerank", json=payload).raise_for_status()

        long_payload = {
            "query": TEXTS[0], "documents": [f"{TEXTS[j % len(TEXTS)]} {j} " * 40 for j in range(200)],
        }
        attack_list: list[Attack] = []
        if args.attacks:
            from lychee_rerank.serving.settings import ServerSettings

            attack_list = attacks_for(args.allow_urls, ServerSettings.model_construct())  # the served defaults
            tiny_file_image(), thin_image_uri()  # built once, before the clock starts
        out: dict = {"latencies": [], "lost": 0, "malformed": [], "statuses": {}, "kinds": {}, "attacks": {}}
        lock = threading.Lock()
        turn = itertools.count()
        load_before = os.getloadavg()
        stop_at = time.monotonic() + args.duration
        t0 = time.perf_counter()
        threads = [
            threading.Thread(
                target=client, args=(url, stop_at, payloads, out, lock, i),
                kwargs={"invalid": args.invalid, "abandon": args.abandon, "long_payload": long_payload,
                        "attacks": args.attacks, "attack_list": attack_list, "turn": turn},
            )
            for i in range(args.clients)
        ]
        with RssSampler(server.proc.pid) as rss, HealthPoller(url) as health:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            time.sleep(2)  # let the last abandoned job reach its batch boundary (RSS "end" is after it)
        lat = sorted(out["latencies"])
        total = len(lat)
        q = statistics.quantiles(lat, n=100) if total >= 2 else [float("nan")] * 99
        print(f"clients={args.clients} duration={wall:.1f}s docs/request={args.docs} (images {args.images})")
        print(f"requests={total} ({total / wall:.1f}/s, {total * args.docs / wall:.0f} docs/s) statuses={out['statuses']}")
        p50, p90, p99 = (q[k] * 1000 for k in (49, 89, 98))
        print(f"latency p50={p50:.0f} ms p90={p90:.0f} ms p99={p99:.0f} ms max={lat[-1] * 1000 if lat else float('nan'):.0f} ms")
        server_errors = sum(n for status, n in out["statuses"].items() if status >= 500)
        mismatched = sum(t["mismatched"] for t in out["attacks"].values())
        print(f"lost={out['lost']} malformed={len(out['malformed'])} 5xx={server_errors} mismatched={mismatched} "
              f"{sorted(set(out['malformed']))[:5]}")
        print(f"request kinds: {out['kinds']}")
        if out["attacks"]:
            from _common import print_table

            print_table([{"attack": name, **tally} for name, tally in sorted(out["attacks"].items())])
        print(rss.summary())
        print(f"/health during the run: {len(health.latencies)} polls, worst {health.worst_s * 1000:.0f} ms, "
              f"{len(health.failures)} failed")
        load_after = os.getloadavg()
        print(f"load average (1/5/15 min) before {load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f}, "
              f"after {load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f}; {os.cpu_count()} CPUs")
        metrics = httpx.get(f"{url}/metrics", timeout=30).text
        errors = [line for line in metrics.splitlines() if line.startswith("lychee_errors_total")]
        print("server errors:", errors or "none")
        stopped = [line for line in metrics.splitlines() if line.startswith("lychee_abandoned_")]
        print("abandoned work stopped:", stopped or "none")
        if out["lost"] or out["malformed"] or server_errors:
            sys.exit(1)
    finally:
        server.stop()
        tmp.cleanup()


if __name__ == "__main__":
    main()
