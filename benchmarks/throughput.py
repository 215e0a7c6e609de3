"""Throughput: the engine vs the naive per-pair loop AND vs the plain batched scorer users would write.

Usage: python benchmarks/throughput.py [--quick] [--model DIR] [--repeats N] [--only SUBSTRING]

All three run in this process, on the same model weights and inputs, in the same run (the
machine is shared: compare the ratios, not absolute numbers across runs):

* naive: :class:`~lychee_rerank.testing.reference.NaiveReference`, one pair per forward, eager;
* batched: :class:`~lychee_rerank.testing.reference.PlainBatchedScorer`, 8 pairs per forward
  through the processor, left padding, no caches (FlagEmbedding-style);
* engine: :class:`~lychee_rerank.LycheeReranker` (concurrent requests: ``rerank_many``, as the
  server's coalescer calls it).

Every time is the best of ``--repeats`` runs; max|d| is the largest score difference against the
naive reference. Without --model, a random-weight Qwen2.5-VL is built, large enough that the
model dominates the naive loop (its share is printed). The scenarios are in ``_scenarios.py``.

``--family qwen3_vl``: the same scenarios on a Qwen3-VL-Reranker checkpoint (without --model a
random one, :func:`lychee_rerank.testing.tiny_qwen3_vl.build` with ``Q3_FULL``/``Q3_QUICK``); the
naive column becomes the OFFICIAL scorer (``_official.py``: its own process on transformers 4.57.3,
same checkpoint and inputs, timed by its ``process()`` loop), the batched one
:class:`~lychee_rerank.testing.reference.Qwen3VLPlainBatchedScorer`, and max|d| is against the
official scores.

``--family qwen3_reranker``: text scenarios only (long query x 100 passages, short query x 100
passages, Chinese query x passages, concurrent requests) on a Qwen3-Reranker checkpoint (without
--model a random one, :func:`lychee_rerank.testing.tiny_qwen3_reranker.build` with
``Q3R_FULL``/``Q3R_QUICK``). Columns: the OFFICIAL README loop (``_official.ReadmeLoop``: the
vendored README code, ``compute_logits(process_inputs(pairs))`` on chunks of ``--official-batch``
pairs, in this process) and the engine; max|d| is against the README's scores.

``--family cross_encoder``: a sequence-classification cross-encoder (ms-marco-MiniLM-L6 size,
random weights) against sentence-transformers' ``CrossEncoder.predict``; see ``_cross_encoder.py``.
``--family jina_m0`` / ``--family mono_qwen2_vl``: against the one-pair reference loops
(``_jina_m0.py``: the reference written from the published modelling code; ``_mono_qwen2_vl.py``:
rerankers' ``MonoVLMRanker``, run unchanged).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, max_abs_diff, print_table  # noqa: E402
from _official import OfficialScorer, ReadmeLoop  # noqa: E402
from _scenarios import Scenario, build_scenarios  # noqa: E402

from lychee_rerank import LycheeReranker  # noqa: E402
from lychee_rerank.testing.reference import NaiveReference, PlainBatchedScorer, Qwen3VLPlainBatchedScorer  # noqa: E402
from lychee_rerank.testing.tiny_model import build  # noqa: E402
from lychee_rerank.testing.tiny_qwen3_vl import build as build_qwen3_vl  # noqa: E402
from lychee_rerank.testing.tiny_qwen3_reranker import build as build_qwen3_reranker  # noqa: E402

FULL = dict(hidden_size=512, num_layers=4, num_heads=8, num_kv_heads=2, vision_hidden_size=128, vision_depth=4, vision_heads=4)
QUICK = dict(hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2, vision_hidden_size=64, vision_depth=2, vision_heads=2)
# Qwen3-VL-Reranker (``--family qwen3_vl``): the same language-model and vision sizes.
Q3_FULL = dict(FULL)
Q3_QUICK = dict(QUICK)
# Qwen3-Reranker (``--family qwen3_reranker``): the same language-model sizes (text only).
Q3R_FULL = dict(hidden_size=512, num_layers=4, num_heads=8, num_kv_heads=2, head_dim=64)
Q3R_QUICK = dict(hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=32)
Q3R_FULL_SIZES = dict(n_passages=100, n_zh=50, n_requests=16, docs_per_request=4, long_words=500)
Q3R_QUICK_SIZES = dict(n_passages=20, n_zh=10, n_requests=4, docs_per_request=3, long_words=300)
FULL_SIZES = dict(n_long=48, n_photos=50, n_iq=32, n_mixed=24, n_requests=16, docs_per_request=4, long_words=500, photo_side=640)
QUICK_SIZES = dict(n_long=12, n_photos=10, n_iq=8, n_mixed=9, n_requests=6, docs_per_request=3, long_words=300, photo_side=256)


def run_engine(rr: LycheeReranker, scenario: Scenario, batch_size: int) -> list[float]:
    """Scores in the reference's pair order (one call, or ``rerank_many`` for several requests)."""
    calls = [{"query": r.engine_query(), "documents": r.engine_docs()} for r in scenario.requests]
    if len(calls) == 1:
        results = [rr.rerank(**calls[0], batch_size=batch_size)]
    else:
        results = rr.rerank_many(calls, batch_size=batch_size)
    scores = []
    for res in results:
        if isinstance(res, Exception):
            raise res
        by_index = {r.index: r for r in res}
        for i in range(len(by_index)):
            if by_index[i].error:
                raise RuntimeError(f"engine error: {by_index[i].error}")
            scores.append(by_index[i].score)
    return scores


def engine_runner(rr: LycheeReranker, scenario: Scenario, batch_size: int) -> Callable[[], list[float]]:
    """A timed run of the engine on ``scenario``: each run starts with a cold vision cache, except
    for a warm scenario, whose gallery is ranked once here under another query (the cache holds it)."""
    if scenario.warm:
        rr.rerank("warm-up query", scenario.requests[0].engine_docs(), batch_size=batch_size)

    def run() -> list[float]:
        if not scenario.warm:
            rr.backend.vision_cache.clear()
        return run_engine(rr, scenario, batch_size)

    return run


def measure(scenario: Scenario, naive: NaiveReference, batched: PlainBatchedScorer, rr: LycheeReranker,
            batch_size: int, repeats: int, naive_repeats: int) -> dict:
    pairs = scenario.reference_pairs()
    runs = {"batched": (repeats, lambda: batched.score(pairs)), "engine": (repeats, engine_runner(rr, scenario, batch_size))}
    if naive_repeats:
        naive.score(**pairs[0])  # first calls are slow (kernel set-up): not timed
        runs["naive"] = (naive_repeats, lambda: [naive.score(**p)[0] for p in pairs])
    best, got = interleaved(runs)
    t_batched, t_engine, got_b, got_e = best["batched"], best["engine"], got["batched"], got["engine"]
    # exploration runs (--naive-repeats 0): no naive column, differences against the batched scorer
    t_naive, ref = (best["naive"], got["naive"]) if naive_repeats else (float("nan"), got_b)
    n = len(pairs)
    return {
        "scenario": scenario.name, "pairs": n,
        "naive p/s": n / t_naive, "batched p/s": n / t_batched, "engine p/s": n / t_engine,
        "eng/naive": t_naive / t_engine, "eng/batched": t_batched / t_engine,
        "max|d| batched": max_abs_diff(got_b, ref), "max|d| engine": max_abs_diff(got_e, ref),
    }


def measure_qwen3_vl(scenario: Scenario, official: OfficialScorer | None, batched: Qwen3VLPlainBatchedScorer,
                     rr: LycheeReranker, batch_size: int, repeats: int, official_repeats: int) -> dict:
    """One Qwen3-VL scenario: the official scorer (its own process), the batched scorer, the engine."""
    pairs = scenario.reference_pairs()
    runs = {"batched": (repeats, lambda: batched.score(pairs)), "engine": (repeats, engine_runner(rr, scenario, batch_size))}
    if official is not None and official_repeats:
        calls = official.calls(scenario)
        runs = {"official": (official_repeats, lambda: official.run(calls)), **runs}
    best, got = interleaved(runs)
    t_batched, t_engine, got_b, got_e = best["batched"], best["engine"], got["batched"], got["engine"]
    t_official, ref = (best["official"], got["official"]) if "official" in got else (float("nan"), got_b)
    n = len(pairs)
    return {
        "scenario": scenario.name, "pairs": n,
        "official p/s": n / t_official, "batched p/s": n / t_batched, "engine p/s": n / t_engine,
        "eng/official": t_official / t_engine, "eng/batched": t_batched / t_engine,
        "max|d| batched": max_abs_diff(got_b, ref), "max|d| engine": max_abs_diff(got_e, ref),
    }


def run_qwen3_vl(args: argparse.Namespace) -> None:
    """The Qwen3-VL-Reranker table: official scorer vs plain batched scorer vs engine."""
    t0 = time.perf_counter()
    model_dir = args.model or build_qwen3_vl(tempfile.mkdtemp(prefix="lychee-throughput-q3-"), **(Q3_QUICK if args.quick else Q3_FULL))
    print(f"model: {model_dir} (built/located in {time.perf_counter() - t0:.1f}s); load: {os.getloadavg()}", file=sys.stderr)
    scenarios = selected(args)
    image_dir = tempfile.mkdtemp(prefix="lychee-throughput-q3-images-")
    official = OfficialScorer(model_dir, image_dir) if args.naive_repeats else None
    batched = Qwen3VLPlainBatchedScorer(model_dir, batch_size=args.batch_size)
    rr = LycheeReranker.from_pretrained(model_dir, device="cpu", dtype="float32")
    assert rr.info["family"] == "qwen3_vl", rr.info
    # First calls are slow (kernel set-up; the engine's first call also builds its escaping
    # tokenizer, ~2 s here): not timed. Text only, so no image enters the vision cache.
    batched.score([{"query_text": "warm-up query", "doc_text": "warm-up document"}])
    rr.rerank("warm-up query", ["warm-up document"])
    rows = []
    for scenario in scenarios:
        before = batched.model_seconds, batched.seconds
        rows.append(measure_qwen3_vl(scenario, official, batched, rr, args.batch_size, args.repeats, args.naive_repeats))
        share = (batched.model_seconds - before[0]) / (batched.seconds - before[1])
        print(f"  {scenario.name}: done (model share of the batched scorer's time {100 * share:.0f}%): "
              f"{rows[-1]}", file=sys.stderr, flush=True)
    print_table(rows)
    print(f"\nQwen3-VL; best of {args.repeats} runs (official: {args.naive_repeats}); batch size {args.batch_size}; "
          f"torch threads {torch.get_num_threads()}; load average at the end {os.getloadavg()}; "
          f"engine stats: {dict(rr.backend.stats)}")


ZH_WORDS = "猫 狗 咖啡 汽车 火箭 宇航员 窗户 公园 桌子 红色 黑色 白色 沙发 太阳 马 硬币 时钟 一只 趴在 旁边 有 的 在 上".split()


def text_scenarios(*, n_passages: int, n_zh: int, n_requests: int, docs_per_request: int, long_words: int,
                   seed: int = 0) -> list[Scenario]:
    """Text-only scenarios for the Qwen3-Reranker table (same word lists as ``_scenarios.py``)."""
    import numpy as np
    from _scenarios import WORDS, Request, sentence

    rng = np.random.default_rng(seed)
    passages = [{"doc_text": sentence(rng, 8, 40)} for _ in range(n_passages)]
    long_query = " ".join(rng.choice(WORDS, size=long_words))
    zh_docs = [{"doc_text": "".join(rng.choice(ZH_WORDS, size=int(rng.integers(10, 50))))} for _ in range(n_zh)]
    concurrent = [
        Request(query_text=sentence(rng, 3, 10), docs=[{"doc_text": sentence(rng, 8, 40)} for _ in range(docs_per_request)])
        for _ in range(n_requests)
    ]
    return [
        Scenario(f"long query ({long_words} words) x {n_passages} passages", [Request(query_text=long_query, docs=passages)]),
        Scenario(f"short query x {n_passages} passages", [Request(query_text="a black cat on a sofa", docs=passages)]),
        Scenario(f"Chinese query x {n_zh} Chinese passages", [Request(query_text="一只黑猫趴在窗台上，旁边有一杯咖啡", docs=zh_docs)]),
        Scenario(f"{n_requests} concurrent requests x {docs_per_request} passages, own queries", concurrent),
    ]


def measure_qwen3_reranker(scenario: Scenario, official: ReadmeLoop, rr: LycheeReranker, batch_size: int,
                           repeats: int, naive_repeats: int) -> dict:
    """One text scenario: the README loop one pair per call (naive) and in chunks (batched), and the
    engine, interleaved; every score compared with the naive loop's."""
    runs = {"batched": (repeats, lambda: official.run(scenario)),
            "engine": (repeats, lambda: run_engine(rr, scenario, batch_size))}
    if naive_repeats:
        runs = {"naive": (naive_repeats, lambda: official.run(scenario, batch_size=1)), **runs}
    best, got = interleaved(runs)
    n = len(scenario.reference_pairs())
    reference = got.get("naive", got["batched"])
    row = {"scenario": scenario.name, "pairs": n}
    row.update({f"{k} p/s": n / best[k] for k in runs})
    row.update({f"eng/{k}": best[k] / best["engine"] for k in runs if k != "engine"})
    row.update({f"max|d| {k}": max_abs_diff(got[k], reference) for k in runs if k != "naive"})
    return row


def run_qwen3_reranker(args: argparse.Namespace) -> None:
    """The Qwen3-Reranker table: the official README loop vs the engine, text scenarios."""
    t0 = time.perf_counter()
    model_dir = args.model or build_qwen3_reranker(
        tempfile.mkdtemp(prefix="lychee-throughput-q3r-"), **(Q3R_QUICK if args.quick else Q3R_FULL))
    print(f"model: {model_dir} (built/located in {time.perf_counter() - t0:.1f}s); load: {os.getloadavg()}", file=sys.stderr)
    scenarios = text_scenarios(**(Q3R_QUICK_SIZES if args.quick else Q3R_FULL_SIZES))
    if args.only:
        scenarios = [s for s in scenarios if any(part in s.name for part in args.only.split(","))]
    official = ReadmeLoop(model_dir, batch_size=args.official_batch)
    rr = LycheeReranker.from_pretrained(model_dir, device="cpu", dtype="float32")
    assert rr.info["family"] == "qwen3_reranker", rr.info
    # First calls are slow (kernel set-up, the engine's escaping tokenizer): not timed.
    official.scores("warm-up query", ["warm-up document"])
    rr.rerank("warm-up query", ["warm-up document"])
    rows = []
    for scenario in scenarios:
        rows.append(measure_qwen3_reranker(scenario, official, rr, args.batch_size, args.repeats, args.naive_repeats))
        print(f"  {scenario.name}: done: {rows[-1]} load {os.getloadavg()}", file=sys.stderr, flush=True)
    print_table(rows)
    print(f"\nQwen3-Reranker; best of {args.repeats} runs (naive: {args.naive_repeats}); naive = the official README "
          f"loop one pair per call, batched = the same in chunks of {args.official_batch}; engine batch size {args.batch_size}; "
          f"torch threads {torch.get_num_threads()}; load average at the end {os.getloadavg()}; "
          f"engine stats: {dict(rr.backend.stats)}")


def selected(args: argparse.Namespace) -> list[Scenario]:
    scenarios = build_scenarios(**(QUICK_SIZES if args.quick else FULL_SIZES))
    if args.only:
        scenarios = [s for s in scenarios if any(part in s.name for part in args.only.split(","))]
    return scenarios


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small model and few pairs (CI smoke run)")
    parser.add_argument("--model", default=None, help="an existing checkpoint directory")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs (the machine is shared and noisy)")
    parser.add_argument("--naive-repeats", type=int, default=1,
                        help="best of N runs of the (slow) naive loop (Qwen3-VL: of the official scorer; Qwen3-Reranker: of the "
                             "official README loop one pair per call); 0: skip it")
    parser.add_argument("--family", choices=("qwen2_5_vl", "qwen3_vl", "qwen3_reranker", "cross_encoder", "jina_m0", "mono_qwen2_vl"),
                        default="qwen2_5_vl",
                        help="qwen3_vl: Qwen3-VL-Reranker, against its official scorer (subprocess, transformers 4.57.3); "
                             "qwen3_reranker: Qwen3-Reranker, against its official README loop (in process); cross_encoder: "
                             "against CrossEncoder.predict; jina_m0: against the plain reference loop; mono_qwen2_vl: against "
                             "rerankers' MonoVLMRanker")
    parser.add_argument("--official-batch", type=int, default=8,
                        help="qwen3_reranker: pairs per compute_logits(process_inputs(...)) call of the README loop")
    parser.add_argument("--only", default=None, help="run the scenarios whose name contains one of these (comma-separated)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads; 1 on a shared, oversubscribed machine (OpenMP spinning thrashes)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)  # the official subprocess
    if args.family == "qwen3_vl":
        return run_qwen3_vl(args)
    if args.family == "qwen3_reranker":
        return run_qwen3_reranker(args)
    if args.family == "cross_encoder":  # vs sentence-transformers' CrossEncoder.predict (_cross_encoder.py)
        from _cross_encoder import run as run_cross_encoder

        return run_cross_encoder(args)
    if args.family in ("jina_m0", "mono_qwen2_vl"):  # one-pair reference loops (_jina_m0.py, _mono_qwen2_vl.py)
        module = importlib.import_module(f"_{args.family}")
        argv = ["--repeats", str(args.repeats), "--batch-size", str(args.batch_size)]
        argv += ["--model", args.model] if args.model else []
        argv += ["--quick"] if args.quick else []
        return module.main(argv)

    t0 = time.perf_counter()
    model_dir = args.model or build(tempfile.mkdtemp(prefix="lychee-throughput-"), **(QUICK if args.quick else FULL))
    print(f"model: {model_dir} (built/located in {time.perf_counter() - t0:.1f}s); load: {os.getloadavg()}", file=sys.stderr)
    scenarios = selected(args)

    naive = NaiveReference(model_dir)
    batched = PlainBatchedScorer(model_dir, batch_size=args.batch_size)
    rr = LycheeReranker.from_pretrained(model_dir, device="cpu", dtype="float32")
    rows = []
    for scenario in scenarios:
        before, wall = naive.model_seconds, time.perf_counter()
        rows.append(measure(scenario, naive, batched, rr, args.batch_size, args.repeats, args.naive_repeats))
        share = (naive.model_seconds - before) / (time.perf_counter() - wall)
        print(f"  {scenario.name}: done (naive loop's model share of the scenario's wall time {100 * share:.0f}%): {rows[-1]}",
              file=sys.stderr, flush=True)
    print_table(rows)
    print(f"\nbest of {args.repeats} runs (naive: {args.naive_repeats}); batch size {args.batch_size}; torch threads {torch.get_num_threads()}; "
          f"load average at the end {os.getloadavg()}; engine stats: {dict(rr.backend.stats)}")


if __name__ == "__main__":
    main()
