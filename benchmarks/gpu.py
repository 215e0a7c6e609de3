"""GPU run-book: throughput against the hardware's limit, with no download.

Usage (on a CUDA machine):
    python benchmarks/gpu.py                       # 7B and 3B, every attention implementation available
    python benchmarks/gpu.py --config 7b --attn sdpa --repeats 3 --json gpu.json
CPU smoke run (what the tests do, so the script never rots):
    python benchmarks/gpu.py --config tiny --device cpu --quick

What it does, per model config (published Qwen2.5-VL 7B / 3B sizes, random weights, BF16) and per
attention implementation (flash_attention_2 when importable, sdpa):

* the scenarios of ``throughput.py`` (``_scenarios.py``) with three columns: one pair per forward
  (naive), the plain batched scorer (8 pairs, processor, left padding, no caches) and the engine;
  pairs/s, model TFLOP/s (the FLOPs of one full forward per pair, vision tower included, over the
  time: reuse of prefixes and image features makes the engine's figure an *effective* rate that
  can pass what the GPU could do on the work it actually ran), % of the GPU's dense BF16 peak,
  peak memory, and max |d score| of batched and engine against the naive column;
* the seed's headline case: 50 photos at 1920x1080 and one text query, under a memory cap (24 GB,
  an RTX 4090) set with ``torch.cuda.set_per_process_memory_fraction``, starting from one batch
  of all 50 so the OOM back-off (halve and retry) has to act; reports how often it did;
* BF16 against FP32 on the same weights and inputs: max |d score| and rank agreement (Kendall tau,
  top-1 and top-5 overlap per request).

Weights are random, so scores mean nothing; speed and numerical agreement do.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import max_abs_diff, print_table, timed  # noqa: E402
from _scenarios import Scenario, build_scenarios, real_photos  # noqa: E402
from throughput import FULL_SIZES, QUICK_SIZES, engine_runner  # noqa: E402

from lychee_rerank import LycheeReranker  # noqa: E402
from lychee_rerank.backends.lychee import LycheeBackend  # noqa: E402
from lychee_rerank.prompt import DEFAULT_INSTRUCTION  # noqa: E402
from lychee_rerank.testing.reference import PlainBatchedScorer  # noqa: E402

# Published Qwen2.5-VL sizes (the 7B is lychee-rerank-mm's base; the 3B its smaller version).
_VISION = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
           "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31]}
CONFIGS: dict[str, dict[str, Any]] = {
    "7b": {"hidden_size": 3584, "intermediate_size": 18944, "num_attention_heads": 28, "num_hidden_layers": 28,
           "num_key_value_heads": 4, "vocab_size": 152064, "tie_word_embeddings": False, "vision": _VISION},
    "3b": {"hidden_size": 2048, "intermediate_size": 11008, "num_attention_heads": 16, "num_hidden_layers": 36,
           "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True, "vision": _VISION},
    # CPU smoke test: same code path, toy sizes.
    "tiny": {"hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 4, "num_hidden_layers": 2,
             "num_key_value_heads": 2, "vocab_size": 640, "tie_word_embeddings": False,
             "vision": {"depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 2,
                        "window_size": 112, "fullatt_block_indexes": [1]}},
}
# Dense BF16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0,
                    "RTX 4090": 165.2, "RTX 3090": 71.0, "V100": 125.0}


# ----------------------------------------------------------------------------- model
def make_model_dir() -> Path:
    """Tokenizer, chat template and processor files of the test checkpoint (its weights are unused)."""
    from lychee_rerank.testing.tiny_model import build

    return build(tempfile.mkdtemp(prefix="lychee-gpu-"))


def build_model(model_dir: Path, size: str, dtype: torch.dtype, attn: str, device: str, seed: int = 0) -> Any:
    """A random-weight Qwen2.5-VL with the published sizes, made directly on ``device``."""
    from transformers import AutoTokenizer, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from lychee_rerank.testing.tiny_model import _mrope_section, _spread_yes_no

    spec = CONFIGS[size]
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg.update({k: v for k, v in spec.items() if k != "vision"})
    cfg["max_window_layers"] = spec["num_hidden_layers"]
    cfg["vision_config"] = {**cfg["vision_config"], **spec["vision"], "out_hidden_size": spec["hidden_size"]}
    cfg["rope_scaling"] = {"type": "mrope", "mrope_section": _mrope_section(spec["hidden_size"] // spec["num_attention_heads"])}
    torch.manual_seed(seed)
    config = Qwen2_5_VLConfig(**cfg)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype, attn_implementation=attn)
    model.eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    _spread_yes_no(model, tok, cfg["image_token_id"])  # scores spread over 0-1, so differences show
    return model


def engine_for(model: Any, model_dir: Path, attn: str, **backend_kwargs: Any) -> LycheeReranker:
    """The engine around an in-memory model (processor from ``model_dir``, as ``load`` builds it)."""
    from lychee_rerank.backends.loading import load

    tiny = load(model_dir, device="cpu", dtype="float32", attn_implementation="sdpa",
                min_pixels=4 * 28 * 28, max_pixels=1280 * 28 * 28)
    loaded = dataclasses.replace(tiny, model=model, device=model.device, dtype=model.dtype,
                                 attn_implementation=attn, name=f"random {model.config.text_config.hidden_size}-wide")
    return LycheeReranker(LycheeBackend(loaded, **backend_kwargs))


# ----------------------------------------------------------------------------- FLOPs
def pair_flops(model: Any, n_tokens: int, grids: list[tuple[int, int, int]]) -> float:
    """FLOPs of one full forward of one pair: 2 x multiply-adds of every matmul, attention included.

    Language model: linear layers 2*P*n, causal attention 2*L*n^2*d (QK^T and AV, half the
    square), lm_head at the last position only. Vision tower per image of p patches: linear
    layers 2*P_v*p, windowed attention 4*p*w*h (w = patches per window, p on full-attention
    blocks), patch embedding and the 2x2 merger.
    """
    t, v = model.config.text_config, model.config.vision_config
    d, hd = t.hidden_size, t.hidden_size // t.num_attention_heads
    kv = t.num_key_value_heads * hd
    per_layer = 2 * d * d + 2 * d * kv + 3 * d * t.intermediate_size
    flops = 2 * per_layer * t.num_hidden_layers * n_tokens + 2 * t.num_hidden_layers * n_tokens**2 * d
    flops += 2 * d * t.vocab_size
    h, patch = v.hidden_size, v.patch_size
    window = (v.window_size // patch) ** 2
    for g in grids:
        p = g[0] * g[1] * g[2]
        block = 2 * (4 * h * h + 3 * h * v.intermediate_size) * p
        full = set(v.fullatt_block_indexes)
        attn = sum(4 * p * (p if i in full else min(p, window)) * h for i in range(v.depth))
        embed = 2 * 3 * v.temporal_patch_size * patch * patch * h * p
        merger = 2 * (16 * h * h + 4 * h * v.out_hidden_size) * p // 4
        flops += block * v.depth + attn + embed + merger
    return float(flops)


def scenario_flops(rr: LycheeReranker, model: Any, scenario: Scenario) -> float:
    backend = rr.backend
    total = 0.0
    for request in scenario.requests:
        query = rr.to_query(request.engine_query())
        for doc in request.engine_docs():
            pair = backend.prepare(0, query, rr.to_query(doc), DEFAULT_INSTRUCTION)
            total += pair_flops(model, pair.length, pair.grids)
    return total


def peak_tflops(device: str, override: float | None) -> float | None:
    if override:
        return override
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    return None


# ----------------------------------------------------------------------------- measuring
def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def throughput_rows(model, model_dir, attn, scenarios, args, peak) -> list[dict[str, Any]]:
    # The naive per-pair loop, sharing the weights already on the GPU (NaiveReference would load
    # the 7B model a second time): one pair per forward, no padding, no caches.
    naive = PlainBatchedScorer(model_dir, batch_size=1, model=model)
    batched = PlainBatchedScorer(model_dir, batch_size=args.batch_size, model=model)
    rr = engine_for(model, model_dir, attn)
    rows = []
    for scenario in scenarios:
        pairs = scenario.reference_pairs()
        flops = scenario_flops(rr, model, scenario)

        def run(fn):
            def go():
                out = fn()
                sync(args.device)
                return out
            return go

        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        run(lambda: naive.score(pairs[:1]))()  # first forward of each shape sets kernels up: not timed
        t_naive, ref = timed(run(lambda: naive.score(pairs)), 1)
        t_batched, got_b = timed(run(lambda: batched.score(pairs)), args.repeats)
        t_engine, got_e = timed(run(engine_runner(rr, scenario, args.batch_size)), args.repeats)
        mem = torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else float("nan")
        n = len(pairs)
        row = {
            "attn": attn, "scenario": scenario.name, "pairs": n,
            "naive p/s": n / t_naive, "batched p/s": n / t_batched, "engine p/s": n / t_engine,
            "eng/naive": t_naive / t_engine, "eng/batched": t_batched / t_engine,
            "batched TFLOP/s": flops / t_batched / 1e12, "engine TFLOP/s": flops / t_engine / 1e12,
        }
        if peak:
            row["batched %peak"] = 100 * flops / t_batched / 1e12 / peak
            row["engine %peak"] = 100 * flops / t_engine / 1e12 / peak
        row.update({"peak GiB": mem, "max|d| batched": max_abs_diff(got_b, ref), "max|d| engine": max_abs_diff(got_e, ref)})
        rows.append(row)
        print(f"  [{attn}] {scenario.name}: {row['engine p/s']:.2f} pairs/s", file=sys.stderr)
    return rows


def headline(model, model_dir, attn, args) -> dict[str, Any]:
    """50 photos of 1920x1080, one text query, under a memory cap, from one batch of 50 (OOM back-off)."""
    n = args.headline_photos
    size = (1920, 1080) if not args.quick else (224, 126)
    photos = [p.resize(size) for p in real_photos(n)]
    rr = engine_for(model, model_dir, attn, max_batch_tokens=None)
    capped = args.device.startswith("cuda") and args.memory_cap_gb
    if capped:
        torch.cuda.empty_cache()
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.memory_cap_gb * 2**30 / total))
        torch.cuda.reset_peak_memory_stats()
    try:
        sync(args.device)
        start = time.perf_counter()
        results = rr.rerank("a black cat on a sofa", photos, batch_size=n)
        sync(args.device)
        seconds = time.perf_counter() - start
    finally:
        if capped:
            torch.cuda.set_per_process_memory_fraction(1.0)
    errors = [r.error for r in results if r.error]
    return {
        "attn": attn, "photos": n, "size": f"{size[0]}x{size[1]}",
        "memory cap GiB": args.memory_cap_gb if capped else None,
        "seconds": seconds, "pairs/s": n / seconds, "oom back-offs": rr.backend.stats["oom_backoffs"],
        "peak GiB": torch.cuda.max_memory_allocated() / 2**30 if capped else None,
        "errors": len(errors), "first error": errors[0] if errors else None,
    }


def bf16_vs_fp32(model, model_dir, attn, scenarios, args) -> dict[str, Any]:
    """Engine scores in BF16, then the same weights cast to FP32: differences and rank agreement."""
    from scipy.stats import kendalltau

    def scores(rr):
        return [[r.score for r in sorted(rr.rerank(q.engine_query(), q.engine_docs(), batch_size=args.batch_size),
                                         key=lambda r: r.index)] for s in scenarios for q in s.requests]

    low = scores(engine_for(model, model_dir, attn))
    model.float()
    try:
        high = scores(engine_for(model, model_dir, attn))
    finally:
        model.to(torch.bfloat16)
    taus, top1, top5, diff = [], [], [], 0.0
    for a, b in zip(low, high):
        diff = max(diff, max_abs_diff(a, b))
        if len(a) > 1:
            taus.append(kendalltau(a, b).statistic)
        rank_a = sorted(range(len(a)), key=lambda i: -a[i])
        rank_b = sorted(range(len(b)), key=lambda i: -b[i])
        top1.append(rank_a[0] == rank_b[0])
        k = min(5, len(a))
        top5.append(len(set(rank_a[:k]) & set(rank_b[:k])) / k)
    return {"attn": attn, "requests": len(low), "max|bf16-fp32|": diff,
            "kendall tau (mean)": sum(taus) / max(1, len(taus)), "kendall tau (min)": min(taus, default=math.nan),
            "top-1 agree": sum(top1) / len(top1), "top-5 overlap": sum(top5) / len(top5)}


def available_attn(device: str) -> list[str]:
    from transformers.utils import is_flash_attn_2_available

    impls = ["sdpa"]
    if device.startswith("cuda") and is_flash_attn_2_available():
        impls.insert(0, "flash_attention_2")
    return impls


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", action="append", choices=sorted(CONFIGS), help="default: 7b and 3b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--attn", default=None, help="comma-separated; default: every one available")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="few, small inputs (CPU smoke test)")
    parser.add_argument("--memory-cap-gb", type=float, default=24.0, help="headline case's cap (RTX 4090: 24)")
    parser.add_argument("--headline-photos", type=int, default=50)
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense BF16 peak, if the GPU is not listed")
    parser.add_argument("--skip", default="", help="comma-separated: throughput, headline, fp32")
    parser.add_argument("--json", type=Path, default=None, help="also write every table here")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device: run with --device cpu --config tiny --quick for the smoke test")
    skip = set(filter(None, args.skip.split(",")))
    model_dir = make_model_dir()
    scenarios = build_scenarios(**(QUICK_SIZES if args.quick else {**FULL_SIZES, "photo_side": None}))
    peak = peak_tflops(args.device, args.peak_tflops)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    report: dict[str, Any] = {"device": device_name, "peak_bf16_tflops": peak, "torch": torch.__version__,
                              "configs": {}}
    for size in args.config or ["7b", "3b"]:
        section: dict[str, Any] = {"throughput": [], "headline": [], "bf16_vs_fp32": []}
        for attn in (args.attn.split(",") if args.attn else available_attn(args.device)):
            start = time.perf_counter()
            model = build_model(model_dir, size, torch.bfloat16, attn, args.device)
            params = sum(p.numel() for p in model.parameters())
            section["params"] = params
            print(f"{size}: {params / 1e9:.2f} B parameters, {attn}, built in {time.perf_counter() - start:.1f}s",
                  file=sys.stderr)
            if "throughput" not in skip:
                section["throughput"] += throughput_rows(model, model_dir, attn, scenarios, args, peak)
            if "headline" not in skip:
                section["headline"].append(headline(model, model_dir, attn, args))
            if "fp32" not in skip:
                section["bf16_vs_fp32"].append(bf16_vs_fp32(model, model_dir, attn, scenarios, args))
            del model
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
        report["configs"][size] = section
        print(f"\n## {size} ({section['params'] / 1e9:.2f} B parameters, BF16, random weights) on {device_name}"
              f"{f', dense BF16 peak {peak:g} TFLOP/s' if peak else ''}")
        for key in ("throughput", "headline", "bf16_vs_fp32"):
            if section[key]:
                print(f"\n{key}:")
                print_table(section[key])
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    main()
