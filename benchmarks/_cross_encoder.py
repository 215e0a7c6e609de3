"""``throughput.py --family cross_encoder``: a sequence-classification cross-encoder, four ways.

All four run in this process on the same weights and inputs, interleaved (a, b, c, d, a, ...), and
each time is the best of ``--repeats`` (the machine is shared: compare ratios, not absolute numbers):

* naive: one pair per forward pass (``tokenizer(q, d)`` then the model), under ``inference_mode``;
* batched: the plain batched scorer a user would write: pairs in input order, chunks of
  ``--ce-batch`` (32), ``tokenizer(qs, ds, padding=True, truncation=True)``, one forward per chunk;
* CrossEncoder: sentence-transformers' ``CrossEncoder.predict(pairs, batch_size=32)`` (it sorts by
  character length), the reference every score is compared with (max|d|);
* engine: ``LycheeReranker.rerank`` (``rerank_many`` for concurrent requests) at the same batch
  size 32; "engine@8" at batch size 8 (every surface's default); "engine/budget": batches
  bounded by the token budget only (batch size 256, ``max_batch_tokens`` 16,384); and
  "engine/padded": batch size 32 with ``packed=False`` (the stock padded forward, batches cut
  where padding costs least: what runs on CUDA), to show what the packed CPU forward adds.

Model: without ``--model``, :func:`lychee_rerank.testing.tiny_cross_encoder.build` with
``size="real"``: the ms-marco-MiniLM-L6 architecture (BERT, 6 layers, hidden 384, 12 heads,
intermediate 1536, the real 30,522-token vocabulary), random weights, FP32 on CPU.
Passages: English words of the real vocabulary, lengths drawn like MS MARCO passages (most 30-120
words, a tail to ~350 words, so a few pairs are cut at 512 tokens).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from _common import interleaved, max_abs_diff, print_table

CE_BATCH = 32


@dataclass
class Call:
    query: str
    docs: list[str]


@dataclass
class CEScenario:
    name: str
    calls: list[Call]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(c.query, d) for c in self.calls for d in c.docs]


def _words(tokenizer: Any) -> list[str]:
    """Whole English words of the real vocabulary (letters only, 3+ characters): realistic tokens."""
    vocab = tokenizer.get_vocab()
    return sorted(w for w in vocab if w.isascii() and w.isalpha() and len(w) >= 3)


def passage(rng: np.random.Generator, words: list[str], n: int) -> str:
    chunks, out = rng.choice(words, size=n), []
    for i, w in enumerate(chunks):
        out.append(w.capitalize() if i == 0 or out[-1].endswith(".") else w)
        if i % int(rng.integers(8, 20)) == 0 and i:
            out[-1] += "." if rng.random() < 0.7 else ","
    return " ".join(out) + "."


def scenarios(tokenizer: Any, *, quick: bool, seed: int = 0) -> list[CEScenario]:
    rng = np.random.default_rng(seed)
    words = _words(tokenizer)
    n = 20 if quick else 100

    def lengths(k: int) -> list[int]:
        return [int(x) for x in np.clip(rng.lognormal(mean=np.log(65), sigma=0.55, size=k), 12, 350)]

    docs = [passage(rng, words, m) for m in lengths(n)]
    query = "what is the population of the largest city in the region"
    requests = [Call(" ".join(rng.choice(words, size=int(rng.integers(3, 9)))), [passage(rng, words, m) for m in lengths(n // 5)])
                for _ in range(8)]
    return [
        CEScenario(f"1 query x {n} passages", [Call(query, docs)]),
        CEScenario(f"8 concurrent requests x {n // 5} passages", requests),
    ]


class NaiveLoop:
    """One pair per forward pass: ``model(**tokenizer(q, d, truncation=True))``."""

    def __init__(self, model: Any, tokenizer: Any, activation: Callable) -> None:
        self.model, self.tokenizer, self.activation = model, tokenizer, activation

    @torch.inference_mode()
    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        out = []
        for q, d in pairs:
            enc = self.tokenizer(q, d, truncation=True, max_length=512, return_tensors="pt")
            out.append(float(self.activation(self.model(**enc).logits.float()).reshape(-1)[0]))
        return out


class PlainBatched(NaiveLoop):
    """Chunks of ``batch_size`` pairs in input order, padded to each chunk's longest."""

    def __init__(self, *args: Any, batch_size: int = CE_BATCH) -> None:
        super().__init__(*args)
        self.batch_size = batch_size

    @torch.inference_mode()
    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        out: list[float] = []
        for i in range(0, len(pairs), self.batch_size):
            qs, ds = zip(*pairs[i : i + self.batch_size])
            enc = self.tokenizer(list(qs), list(ds), padding=True, truncation=True, max_length=512, return_tensors="pt")
            out.extend(self.activation(self.model(**enc).logits.float()).reshape(-1).tolist())
        return out


def engine_runner(rr: Any, scenario: CEScenario, batch_size: int) -> Callable[[], list[float]]:
    def run() -> list[float]:
        if len(scenario.calls) == 1:
            results = [rr.rerank(scenario.calls[0].query, scenario.calls[0].docs, batch_size=batch_size)]
        else:
            results = rr.rerank_many([{"query": c.query, "documents": c.docs} for c in scenario.calls], batch_size=batch_size)
        return [r.score for rs in results for r in sorted(rs, key=lambda r: r.index)]

    return run


def measure(scenario: CEScenario, runs: dict[str, tuple[int, Callable[[], list[float]]]]) -> dict[str, Any]:
    best, got = interleaved(runs)
    n = len(scenario.pairs)
    row: dict[str, Any] = {"scenario": scenario.name, "pairs": n}
    row.update({f"{k} p/s": n / best[k] for k in runs})
    engines = ("engine", "engine@8", "engine/budget", "engine/padded")
    for k in engines:
        row[f"{k} / CE"] = best["CrossEncoder"] / best[k]
    for k in ("naive", "batched"):  # the brief's yardsticks, same run
        if k in best:
            row[f"engine / {k}"] = best[k] / best["engine"]
    row["max|d| engine"] = max(max_abs_diff(got[k], got["CrossEncoder"]) for k in engines)
    row["max|d| batched"] = max_abs_diff(got["batched"], got["CrossEncoder"])
    return row


def run(args: argparse.Namespace) -> None:
    from sentence_transformers import CrossEncoder

    from lychee_rerank import LycheeReranker
    from lychee_rerank.testing.tiny_cross_encoder import build

    t0 = time.perf_counter()
    model_dir = args.model or build(tempfile.mkdtemp(prefix="lychee-throughput-ce-"), size="tiny" if args.quick else "real")
    print(f"model: {model_dir} (built/located in {time.perf_counter() - t0:.1f}s); load: {os.getloadavg()}", file=sys.stderr)
    ce = CrossEncoder(str(model_dir), device="cpu", local_files_only=True)
    rr = LycheeReranker.from_pretrained(model_dir, device="cpu", dtype="float32")
    budget = LycheeReranker(rr.backend)  # the same model: only the call's batch size differs
    padded = LycheeReranker.from_pretrained(model_dir, device="cpu", dtype="float32", packed=False)
    assert rr.info["family"] == "cross_encoder", rr.info
    model, tokenizer, activation = rr.backend.model, rr.backend.tokenizer, rr.backend.activation.fn
    naive, batched = NaiveLoop(model, tokenizer, activation), PlainBatched(model, tokenizer, activation)
    for warm in (lambda: ce.predict([("warm-up", "warm-up")]), lambda: rr.rerank("warm-up", ["warm-up"]),
                 lambda: padded.rerank("warm-up", ["warm-up"])):
        warm()  # first calls are slow (kernel set-up): not timed
    rows = []
    for scenario in scenarios(tokenizer, quick=args.quick):
        pairs = scenario.pairs
        runs = {
            "CrossEncoder": (args.repeats, lambda: [float(x) for x in ce.predict(pairs, batch_size=CE_BATCH)]),
            "engine": (args.repeats, engine_runner(rr, scenario, CE_BATCH)),
            "engine@8": (args.repeats, engine_runner(rr, scenario, 8)),
            "engine/budget": (args.repeats, engine_runner(budget, scenario, 256)),
            "engine/padded": (args.repeats, engine_runner(padded, scenario, CE_BATCH)),
            "batched": (args.repeats, lambda: batched.score(pairs)),
        }
        if args.naive_repeats:
            runs["naive"] = (args.naive_repeats, lambda: naive.score(pairs))
        rows.append(measure(scenario, runs))
        print(f"  {scenario.name}: done: {rows[-1]} load {os.getloadavg()}", file=sys.stderr, flush=True)
    print_table(rows)
    lengths = [p.length for p in rr.backend._tokenize(0, scenarios(tokenizer, quick=args.quick)[0].calls[0].docs,
                                                    scenarios(tokenizer, quick=args.quick)[0].calls[0].query)]
    print(f"\ncross-encoder ({'tiny' if args.quick else 'ms-marco-MiniLM-L6 size'}, random weights, FP32, CPU); best of "
          f"{args.repeats} runs (naive: {args.naive_repeats}); CrossEncoder.predict, engine and batched at batch size "
          f"{CE_BATCH}, engine@8 at 8, engine/budget at 256 pairs under {rr.backend.max_batch_tokens} padded tokens, "
          f"engine/padded at {CE_BATCH} with the padded forward ({padded.info['forward']}); engine forward: {rr.info['forward']}; pair tokens of the "
          f"first scenario: min {min(lengths)}, median {int(np.median(lengths))}, max {max(lengths)}; "
          f"torch threads {torch.get_num_threads()}; load average at the end {os.getloadavg()}; "
          f"engine stats: {dict(rr.backend.stats)}")
