"""Engine vs the naive per-pair loop, on the same model and inputs, in one run.

Usage: python benchmarks/batching.py [--model DIR] [--pairs N]
Without --model a tiny random checkpoint is built (scores are meaningless, the mechanics are
real). Prints pairs/s for the naive loop and the engine at batch 1 and 8, the ratio, and the
largest score difference against the naive loop (fidelity is part of the result).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from PIL import Image

from lychee_rerank import LycheeReranker
from lychee_rerank.testing.reference import NaiveReference
from lychee_rerank.testing.tiny_model import build


def photo(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8), "RGB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model_dir = args.model or build(tempfile.mkdtemp(prefix="lychee-bench-"))

    rng = np.random.default_rng(0)
    words = "cat dog coffee car rocket astronaut window park table red black white".split()
    texts = [" ".join(rng.choice(words, size=int(rng.integers(5, 60)))) for _ in range(args.pairs)]
    images = [photo(int(rng.integers(64, 400)), int(rng.integers(64, 400)), i) for i in range(args.pairs)]
    scenarios = {"text query x text docs": ("a black cat", texts), "text query x images": ("a black cat", images)}

    naive = NaiveReference(model_dir)
    rr = LycheeReranker.from_pretrained(model_dir, device="cpu", dtype="float32")
    rows = []
    for name, (query, docs) in scenarios.items():
        def run_naive():
            return [naive.score(query_text=query, **({"doc_text": d} if isinstance(d, str) else {"doc_image": d}))[0] for d in docs]

        t_naive, ref = best_of(run_naive, args.repeats)
        for batch in (1, 8):
            t_engine, results = best_of(lambda: rr.rerank(query, docs, batch_size=batch), args.repeats)
            got = {r.index: r.score for r in results}
            delta = max(abs(got[i] - ref[i]) for i in range(len(docs)))
            rows.append((name, len(docs), batch, len(docs) / t_naive, len(docs) / t_engine, t_naive / t_engine, delta))

    header = f"{'scenario':<24} {'pairs':>5} {'batch':>5} {'naive pairs/s':>14} {'engine pairs/s':>15} {'ratio':>6} {'max|dscore|':>12}"
    print(header)
    print("-" * len(header))
    for name, n, batch, naive_ps, engine_ps, ratio, delta in rows:
        print(f"{name:<24} {n:>5} {batch:>5} {naive_ps:>14.1f} {engine_ps:>15.1f} {ratio:>6.2f} {delta:>12.2e}")


def best_of(fn, repeats: int):
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


if __name__ == "__main__":
    main()
