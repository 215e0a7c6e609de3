"""Bounded load run of `lychee serve` on loopback: N concurrent clients for D seconds.

Usage:
  python benchmarks/http_load.py [--backend lite|lychee] [--model DIR] [--clients 16] [--duration 30]
                                 [--docs 8] [--images 0] [--invalid 0.2] [--abandon 0.1]

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
apart, not as lost. The machine's load average is printed before and after.
Without --model and with --backend lychee, the tiny random checkpoint is built and served.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

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
        return "a document failed: " + next(r["error"] for r in results if "error" in r)
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
    ("nul path", b'{"query": "cat", "documents": [{"image": "x\u0000y"}, "b"]}', {200}, 0),
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


def client(
    url: str, stop_at: float, payloads: list[dict], out: dict, lock: threading.Lock, seed: int,
    invalid: float = 0.0, abandon: float = 0.0, long_payload: dict | None = None,
) -> None:
    latencies, statuses, lost, malformed = [], {}, 0, []
    rng = random.Random(seed)
    counts = {"valid": 0, "invalid": 0, "abandoned": 0, "abandoned_answered": 0}
    with httpx.Client(base_url=url, timeout=120) as c:
        i = seed
        while time.monotonic() < stop_at:
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
            if draw < abandon + invalid:
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
        out["latencies"].extend(latencies)
        out["lost"] += lost
        out["malformed"].extend(malformed)
        for k, v in statuses.items():
            out["statuses"][k] = out["statuses"].get(k, 0) + v


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="lite", choices=["lite", "lychee"])
    parser.add_argument("--model", default=None)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--docs", type=int, default=8)
    parser.add_argument("--images", type=int, default=0, help="Image documents among --docs.")
    parser.add_argument("--invalid", type=float, default=0.0, help="Fraction of hostile/careless requests.")
    parser.add_argument("--abandon", type=float, default=0.0, help="Fraction of long requests given up after 0.3 s.")
    args = parser.parse_args()
    if args.clients > 64 or args.duration > 600:
        sys.exit("bounded run: at most 64 clients and 600 s")

    tmp = tempfile.TemporaryDirectory()
    model = args.model
    if args.backend == "lychee" and model is None:
        from lychee_rerank.testing.tiny_model import build

        model = str(build(Path(tmp.name) / "tiny"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "lychee_rerank.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--backend", args.backend, "--log-level", "warning"]
    if model:
        cmd += ["--model", model, "--device", "cpu", "--dtype", "float32"]
    env = {k: v for k, v in os.environ.items() if k != "LYCHEE_API_KEY"}
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        started = time.monotonic()
        while True:
            if server.poll() is not None:
                sys.exit(f"server exited: {server.stderr.read()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() - started > 300:
                sys.exit("server not ready after 300 s")
            time.sleep(0.2)
        info = httpx.get(f"{url}/health").json()
        print(f"server ready in {time.monotonic() - started:.1f} s: {info['backend']} / {info['model']}")

        images = [photo_b64(i) for i in range(args.images)]
        payloads = []
        for p in range(8):
            docs: list = [TEXTS[(p + j) % len(TEXTS)] for j in range(args.docs - args.images)]
            docs += [{"text": "photo", "image": im} for im in images]
            payloads.append({"query": TEXTS[p % len(TEXTS)], "documents": docs})
        # warm-up (first requests pay one-time costs), not counted
        with httpx.Client(base_url=url, timeout=120) as c:
            for payload in payloads[:2]:
                c.post("/v1/rerank", json=payload).raise_for_status()

        long_payload = {
            "query": TEXTS[0], "documents": [f"{TEXTS[j % len(TEXTS)]} {j} " * 40 for j in range(200)],
        }
        out: dict = {"latencies": [], "lost": 0, "malformed": [], "statuses": {}, "kinds": {}}
        lock = threading.Lock()
        load_before = os.getloadavg()
        stop_at = time.monotonic() + args.duration
        t0 = time.perf_counter()
        threads = [
            threading.Thread(
                target=client, args=(url, stop_at, payloads, out, lock, i),
                kwargs={"invalid": args.invalid, "abandon": args.abandon, "long_payload": long_payload},
            )
            for i in range(args.clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        lat = sorted(out["latencies"])
        total = len(lat)
        q = statistics.quantiles(lat, n=100) if total >= 2 else [float("nan")] * 99
        print(f"clients={args.clients} duration={wall:.1f}s docs/request={args.docs} (images {args.images})")
        print(f"requests={total} ({total / wall:.1f}/s, {total * args.docs / wall:.0f} docs/s) statuses={out['statuses']}")
        p50, p90, p99 = (q[k] * 1000 for k in (49, 89, 98))
        print(f"latency p50={p50:.0f} ms p90={p90:.0f} ms p99={p99:.0f} ms max={lat[-1] * 1000:.0f} ms")
        print(f"lost={out['lost']} malformed={len(out['malformed'])} {sorted(set(out['malformed']))[:5]}")
        print(f"request kinds: {out['kinds']}")
        load_after = os.getloadavg()
        print(f"load average (1/5/15 min) before {load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f}, "
              f"after {load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f}; {os.cpu_count()} CPUs")
        time.sleep(2)  # let the last abandoned job reach its batch boundary
        metrics = httpx.get(f"{url}/metrics").text
        errors = [line for line in metrics.splitlines() if line.startswith("lychee_errors_total")]
        print("server errors:", errors or "none")
        stopped = [line for line in metrics.splitlines() if line.startswith("lychee_abandoned_")]
        print("abandoned work stopped:", stopped or "none")
        if out["lost"] or out["malformed"]:
            sys.exit(1)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        tmp.cleanup()


if __name__ == "__main__":
    main()
