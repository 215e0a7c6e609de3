"""MonoQwen2-VL: the engine vs rerankers' ``MonoVLMRanker`` loop, on the same adapter checkpoint.

Usage: python benchmarks/_mono_qwen2_vl.py [--quick] [--model ADAPTER_DIR] [--repeats N] [--pages N]
       [--device cpu|cuda] [--dtype float32|bfloat16]

Both run in this process, on the same weights (base + LoRA adapter) and inputs, interleaved, each
time the best of ``--repeats`` (the machine is shared: compare the ratio, not absolute numbers):

* MonoVLMRanker: rerankers 0.10.0 run unchanged (``rank(query, base64 pages)``): the adapter loaded
  unmerged through transformers' PEFT integration, one pair per forward pass;
* engine: ``LycheeReranker.rerank`` at batch size 8 (adapter merged at load; prefix cache and vision
  cache as configured by default), "cold" (a fresh vision cache) and "warm" (a second query over
  the same pages: the pages' vision features come from the cache).

Scenario ("real-shaped"): one text query x ``--pages`` document-page images (portrait pages of
560x728 px: 520 visual tokens each, the processor's default budget, as MonoVLMRanker sends them).
Without ``--model`` a random MonoQwen2-VL is built (:func:`lychee_rerank.testing.tiny_qwen2_vl.build_mono`)
large enough that the model dominates the loop; max|d| is the largest score difference between the two.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).parent))
from _common import max_abs_diff, print_table, timed  # noqa: E402

FULL = dict(hidden_size=512, num_layers=4, num_heads=8, num_kv_heads=2, vision_embed_dim=128, vision_depth=4, vision_heads=4)
QUICK = dict(hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2, vision_embed_dim=64, vision_depth=2, vision_heads=2)


def page(k: int, width: int = 560, height: int = 728) -> Image.Image:
    """A document-like page: white, a title bar, lines of 'text' and a chart block (deterministic)."""
    rng = np.random.default_rng(k)
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.rectangle([40, 40, width - 40, 90], fill=tuple(int(c) for c in rng.integers(0, 200, 3)))
    y = 120
    while y < height - 60:
        draw.rectangle([40, y, 40 + int(rng.integers(200, width - 80)), y + 10], fill=(40, 40, 40))
        y += 22
    x0, y0 = int(rng.integers(60, 260)), int(rng.integers(300, 500))
    draw.rectangle([x0, y0, x0 + 200, y0 + 140], fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return img


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", type=Path, help="a MonoQwen2-VL adapter directory (default: a random one)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--pages", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args(argv)

    from rerankers.models.monovlm_ranker import MonoVLMRanker

    from lychee_rerank import LycheeReranker
    from lychee_rerank.backends.families import adapter_base

    tmp = tempfile.TemporaryDirectory()
    model_dir = args.model
    if model_dir is None:
        from lychee_rerank.testing.tiny_qwen2_vl import build_mono

        model_dir = build_mono(Path(tmp.name) / "mono", **(QUICK if args.quick else FULL))
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    ranker = MonoVLMRanker(str(model_dir), processor_name=adapter_base(model_dir), dtype=dtype, device=args.device,
                           verbose=0, attention_implementation="sdpa")
    engine = LycheeReranker.from_pretrained(model_dir, device=args.device, dtype=args.dtype)

    pages = [page(k) for k in range(args.pages)]
    encoded = []
    for p in pages:
        buf = io.BytesIO()
        p.save(buf, format="PNG")
        encoded.append(buf.getvalue())
    b64 = [base64.b64encode(e).decode("ascii") for e in encoded]
    queries = ["quarterly revenue by region, bar chart", "一份关于季度收入的报告"]

    def reference(query: str) -> list[float]:
        ranked = ranker.rank(query, b64, doc_ids=list(range(len(b64))))
        by_id = {r.document.doc_id: r.score for r in ranked}
        return [by_id[i] for i in range(len(b64))]

    def ours(query: str) -> list[float]:
        return [r.score for r in sorted(engine.rerank(query, encoded, batch_size=args.batch_size), key=lambda r: r.index)]

    rows = []
    for query in queries:
        t_ref, want = timed(lambda: reference(query), args.repeats)
        engine.backend.vision_cache.clear()
        t_cold, got_cold = timed(lambda: (engine.backend.vision_cache.clear(), ours(query))[1], args.repeats)
        t_warm, got = timed(lambda: ours(query), args.repeats)
        rows.append({
            "query": query[:24], "pairs": len(pages), "MonoVLMRanker s": t_ref, "engine cold s": t_cold,
            "engine warm s": t_warm, "x cold": t_ref / t_cold, "x warm": t_ref / t_warm,
            "max|d|": max(max_abs_diff(want, got_cold), max_abs_diff(want, got)),
        })
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU ({torch.get_num_threads()} threads)"
    print(f"MonoQwen2-VL {'quick' if args.quick else 'full'} random model, {args.dtype}, {device}; best of {args.repeats}")
    print_table(rows)
    tmp.cleanup()


if __name__ == "__main__":
    main()
