"""Throughput of the engine vs the naive per-pair loop (issue: shared prefix, vision cache, ...).

Usage: python benchmarks/throughput.py [--quick] [--model DIR]

Both run in this process on the same model and inputs. Without --model, a random-weight
Qwen2.5-VL is built large enough that the model dominates the naive loop (the share is
printed). Scenarios: a >= 1,000-token text query x 64 texts; a short query x 50 images; an
image query x 32 texts; the same 50 images under a second query (vision cache warm).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import noise_photo, print_table, timed  # noqa: E402

from lychee_rerank import LycheeReranker  # noqa: E402
from lychee_rerank.testing.reference import NaiveReference  # noqa: E402
from lychee_rerank.testing.tiny_model import build  # noqa: E402

FULL = dict(hidden_size=512, num_layers=4, num_heads=8, num_kv_heads=2, vision_hidden_size=128, vision_depth=4, vision_heads=4)
QUICK = dict(hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2, vision_hidden_size=64, vision_depth=2, vision_heads=2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small model and few pairs (CI smoke run)")
    parser.add_argument("--model", default=None, help="an existing checkpoint directory")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs (the machine is shared and noisy)")
    args = parser.parse_args()
    n_long, n_img, n_iq = (12, 10, 8) if args.quick else (64, 50, 32)

    t0 = time.perf_counter()
    model_dir = args.model or build(tempfile.mkdtemp(prefix="lychee-throughput-"), **(QUICK if args.quick else FULL))
    print(f"model: {model_dir} (built/located in {time.perf_counter() - t0:.1f}s)", file=sys.stderr)

    rng = np.random.default_rng(0)
    words = "cat dog coffee car rocket astronaut window park table red black white sofa sun".split()
    long_query = " ".join(rng.choice(words, size=1100))
    texts = [" ".join(rng.choice(words, size=int(rng.integers(8, 40)))) for _ in range(max(n_long, n_iq))]
    images = [noise_photo(int(rng.integers(160, 480)), int(rng.integers(160, 480)), seed=i) for i in range(n_img)]
    query_image = noise_photo(320, 240, seed=999)

    naive = NaiveReference(model_dir)
    rr = LycheeReranker.from_pretrained(model_dir, device="cpu", dtype="float32")
    assert len(rr.backend.tokenizer.encode(long_query)) >= 1000

    # (name, reference query, engine query, documents, vision cache warm?)
    scenarios = [
        ("long text query x texts", {"query_text": long_query}, long_query, texts[:n_long], False),
        ("short query x images", {"query_text": "a black cat on a sofa"}, "a black cat on a sofa", images, False),
        ("image query x texts", {"query_image": query_image}, query_image, texts[:n_iq], False),
        ("same images, 2nd query (vision cache)", {"query_text": "a red car in the sun"}, "a red car in the sun", images, True),
    ]
    rows = []
    naive_total = naive_model = 0.0
    for name, ref_query, query, docs, warm in scenarios:
        before, wall = naive.model_seconds, time.perf_counter()
        t_naive, ref = timed(lambda: [naive.score(**ref_query, **_doc(d))[0] for d in docs], args.repeats)
        naive_total += time.perf_counter() - wall
        naive_model += naive.model_seconds - before
        if warm:  # the gallery was ranked once under another query: the vision cache holds it
            rr.rerank("warm-up query", docs, batch_size=args.batch_size)

        def engine():
            if not warm:
                rr.backend.vision_cache.clear()  # each repeat starts cold
            return rr.rerank(query, docs, batch_size=args.batch_size)

        t_engine, results = timed(engine, args.repeats)
        got = {r.index: r.score for r in results}
        rows.append({
            "scenario": name, "pairs": len(docs),
            "naive pairs/s": len(docs) / t_naive, "engine pairs/s": len(docs) / t_engine,
            "ratio": t_naive / t_engine, "max|dscore|": max(abs(got[i] - ref[i]) for i in range(len(docs))),
        })
    print_table(rows)
    print(f"\nbest of {args.repeats} runs each; naive loop: {100 * naive_model / naive_total:.0f}% of its time inside model forward; "
          f"engine stats: {dict(rr.backend.stats)}")


def _doc(d):
    return {"doc_text": d} if isinstance(d, str) else {"doc_image": d}


if __name__ == "__main__":
    main()
