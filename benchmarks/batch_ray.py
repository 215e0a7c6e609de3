"""``lychee batch`` throughput: --local vs Ray Data with 1 and 2 actors (lite backend, text pairs).

Usage: python benchmarks/batch_ray.py [--queries 100] [--per-query 20] [--cpus 2]
Each mode scores the same fresh input into a fresh output, end to end (reading, model loading
in every actor, scoring, writing): what a user waits for. Ray's own start-up (``ray.init``) is
timed separately, once; an untimed warm-up comes first. The overhead line compares Ray x1 with
--local (actor start-up + model load per actor + Ray Data scheduling, amortised on big jobs).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table  # noqa: E402

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from lychee_rerank.config import RerankerConfig  # noqa: E402
from lychee_rerank.jobs.batch import ScoreOptions, run_batch  # noqa: E402


def write_input(path: Path, queries: int, per_query: int) -> int:
    topics = ["red bicycle", "tomato soup", "mountain lake", "jazz concert", "city at night", "old library", "cat on a sofa"]
    with path.open("w", encoding="utf-8") as fh:
        for q in range(queries):
            docs = [f"{topics[(q + i) % len(topics)]} number {i}, photographed for story {q}" for i in range(per_query)]
            fh.write(json.dumps({"query_id": q, "query": f"a story about {topics[q % len(topics)]}", "candidates": docs}) + "\n")
    return queries * per_query


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--per-query", type=int, default=20)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs given to the local Ray instance.")
    args = parser.parse_args()

    import ray

    work = Path(tempfile.mkdtemp(prefix="lychee-batch-bench-"))
    src = work / "input.jsonl"
    pairs = write_input(src, args.queries, args.per_query)
    spec = RerankerConfig(backend="lite")
    options = ScoreOptions(batch_size=8)

    # Untimed warm-up: the first lite load on a machine fills on-disk caches (tens of seconds),
    # which would otherwise be charged to whichever mode runs first.
    t0 = time.perf_counter()
    spec.load().rerank("warm up", ["the first load", "fills caches"])
    print(f"warm-up (first load + 2 pairs): {time.perf_counter() - t0:.1f} s", flush=True)

    rows = []
    local = run_batch(src, work / "local.jsonl", spec, options, local=True)
    rows.append({"mode": "--local", "pairs": local.pairs, "seconds": local.seconds, "pairs/s": local.pairs_per_s})

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    ray_start = time.perf_counter() - t0

    for actors in (1, 2):
        s = run_batch(src, work / f"ray{actors}.jsonl", spec, options, concurrency=actors, num_cpus_per_actor=1,
                      queries_per_batch=8)
        rows.append({"mode": f"ray x{actors}", "pairs": s.pairs, "seconds": s.seconds, "pairs/s": s.pairs_per_s})
    ray.shutdown()
    local_s = local.seconds

    assert all(r["pairs"] == pairs for r in rows), rows
    print(f"{pairs} text pairs ({args.queries} queries x {args.per_query}), lite backend, {os.cpu_count()} cores visible")
    print_table(rows)
    x1 = rows[1]["seconds"]
    print(f"ray.init (once per job): {ray_start:.1f} s")
    print(f"Ray overhead, 1 actor vs best --local: {x1 - local_s:+.1f} s ({(x1 / local_s - 1) * 100:+.0f}% wall time)")
    print(f"2 actors vs 1 actor: x{rows[2]['pairs/s'] / rows[1]['pairs/s']:.2f} pairs/s")


if __name__ == "__main__":
    main()
