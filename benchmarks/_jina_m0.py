"""jina-reranker-m0: the engine against the plain one-pair reference loop, same weights and inputs.

* reference: ``tests/official/jina_m0_reference.py`` (written from the published modelling code),
  one pair per forward pass, the processor tokenising each prompt;
* engine: ``LycheeReranker.rerank`` (batched under the token budget, prefix cache), once with the
  vision-feature cache cleared before every call (cold) and once with it warm (a repeated query).

Both in this process, interleaved, each time the best of ``--repeats`` (the machine is shared:
compare ratios, not absolute numbers); ``max|d|`` is the largest score difference over all pairs.

Model: without ``--model``, :func:`lychee_rerank.testing.tiny_jina_m0.build` with larger sizes
(hidden 256, 4 layers, vision 64 wide and 2 deep), random weights, real Qwen2 vocabulary.

Usage: ``python benchmarks/throughput.py --family jina_m0 [--quick]`` or ``python benchmarks/_jina_m0.py [--model DIR] [--docs 32] [--images 8] [--device cpu] [--dtype float32]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import max_abs_diff, noise_photo, print_table, timed  # noqa: E402

WORDS = ("the report says revenue grew while costs fell in the third quarter and the new factory in "
         "Shenzhen opened on time 北京 上海 市场 报告 增长 a black cat sleeps on a sunny window sill").split()


def documents(n_text: int, n_images: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(20, 160)))) for _ in range(n_text)]
    images = [noise_photo(int(rng.integers(64, 400)), int(rng.integers(64, 400)), seed=k) for k in range(n_images)]
    return texts + images


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--docs", type=int, default=32)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--quick", action="store_true", help="a smaller model and fewer documents (smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.docs, args.images = min(args.docs, 8), min(args.images, 2)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from lychee_rerank import LycheeReranker
    from tests.official.jina_m0_reference import JinaM0Reference

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from lychee_rerank.testing.tiny_jina_m0 import build

            model = build(Path(tmp) / "jina-m0", hidden_size=256, num_layers=4, num_heads=4, num_kv_heads=2,
                          vision_embed_dim=64, vision_depth=2)
        dtype = getattr(torch, args.dtype)
        reference = JinaM0Reference(model, dtype=dtype)
        reference.model.to(args.device)
        reference.score.to(args.device)
        engine = LycheeReranker.from_pretrained(model, device=args.device, dtype=args.dtype)
        query = "how did revenue change in the third quarter?"
        docs = documents(args.docs, args.images)

        def ref_scores() -> list[float]:
            out = []
            for d in docs:
                inputs = {k: v.to(args.device) if isinstance(v, torch.Tensor) else v for k, v in reference.inputs(query, d).items()}
                with torch.no_grad():
                    hidden = reference.model(**inputs, use_cache=False, output_hidden_states=True).hidden_states[-1]
                    out.append(float(torch.sigmoid(reference.score(hidden[:, -1]).float() - 2.65)[0, 0]))
            return out

        def engine_scores() -> list[float]:
            results = engine.rerank(query, docs, batch_size=args.batch_size)
            return [r.score for r in sorted(results, key=lambda r: r.index)]

        def engine_cold() -> list[float]:
            engine.backend.vision_cache.clear()  # every image through the vision tower again
            return engine_scores()

        rows = []
        t_ref, s_ref = timed(ref_scores, args.repeats)
        t_cold, s_cold = timed(engine_cold, args.repeats)
        t_eng, s_eng = timed(engine_scores, args.repeats)
        pairs = len(docs)
        for name, seconds, scores in (("reference (one pair a call)", t_ref, s_ref),
                                      (f"engine, vision cache cold (batch {args.batch_size})", t_cold, s_cold),
                                      (f"engine, vision cache warm (batch {args.batch_size})", t_eng, s_eng)):
            rows.append({"scorer": name, "pairs": pairs, "seconds": seconds, "pairs/s": pairs / seconds,
                         "max|d|": max_abs_diff(scores, s_ref)})
        print(f"model {model} · {args.device} · {args.dtype} · {args.docs} texts + {args.images} images")
        print_table(rows)


if __name__ == "__main__":
    main()
