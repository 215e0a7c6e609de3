"""Engine at batch 1 and 8 vs the naive per-pair loop and the plain batched scorer (8 pairs per
forward, left padding, no caches), on the tiny test checkpoint.

Usage: python benchmarks/batching.py [--model DIR] [--pairs N]
Prints pairs/s, the ratios to the naive loop and to the plain batched scorer, and the largest
score difference against the naive loop.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import noise_photo, print_table, timed  # noqa: E402

from lychee_rerank import LycheeReranker  # noqa: E402
from lychee_rerank.testing.reference import NaiveReference, PlainBatchedScorer  # noqa: E402
from lychee_rerank.testing.tiny_model import build  # noqa: E402


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
    images = [noise_photo(int(rng.integers(64, 400)), int(rng.integers(64, 400)), i) for i in range(args.pairs)]
    scenarios = {"text query x text docs": ("a black cat", texts), "text query x images": ("a black cat", images)}

    naive = NaiveReference(model_dir)
    plain = PlainBatchedScorer(model_dir, batch_size=8)
    rows = []
    for name, (query, docs) in scenarios.items():
        t_naive, ref = timed(lambda: [naive.score(query_text=query, **_doc(d))[0] for d in docs], args.repeats)
        t_plain, _ = timed(lambda: plain.score([{"query_text": query, **_doc(d)} for d in docs]), args.repeats)
        for batch in (1, 8):
            # a fresh engine each time, so the vision cache does not flatter later runs
            rr = LycheeReranker.from_pretrained(model_dir, device="cpu", dtype="float32", vision_cache_bytes=0)
            t_engine, results = timed(lambda: rr.rerank(query, docs, batch_size=batch), args.repeats)
            got = {r.index: r.score for r in results}
            rows.append({
                "scenario": name, "pairs": len(docs), "batch": batch,
                "naive pairs/s": len(docs) / t_naive, "batched pairs/s": len(docs) / t_plain,
                "engine pairs/s": len(docs) / t_engine, "eng/naive": t_naive / t_engine, "eng/batched": t_plain / t_engine,
                "max|dscore|": max(abs(got[i] - ref[i]) for i in range(len(docs))),
            })
    print_table(rows)


def _doc(d):
    return {"doc_text": d} if isinstance(d, str) else {"doc_image": d}


if __name__ == "__main__":
    main()
