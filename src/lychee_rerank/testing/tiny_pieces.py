"""Pieces the tiny checkpoint builders (``lychee_rerank.testing.tiny_*``) share: the command line's
``OUT_DIR [--seed N]``, the Qwen2-VL image processor's settings, the two-shard safetensors writer
under the 4.x key names, and the drawn probe pictures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Iterable

#: ``preprocessor_config.json`` of the Qwen2-VL image processor (Qwen2-VL; Qwen2.5-VL names its own processor class).
QWEN2_VL_PREPROCESSOR = {
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "Qwen2VLImageProcessor",
    "processor_class": "Qwen2VLProcessor",
}


def seed_parser(doc: str) -> argparse.ArgumentParser:
    """A builder's command line: ``OUT_DIR [--seed N]`` (the module docstring's first line as description)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def seed_main(build: Any, doc: str, argv: list[str] | None = None) -> None:
    """The command of a builder that takes only ``OUT_DIR [--seed N]``: build, print the path."""
    args = seed_parser(doc).parse_args(argv)
    print(build(args.out_dir, seed=args.seed))


def legacy_key(key: str) -> str:
    """A transformers-5 state-dict key under its 4.x name (the published checkpoints' names)."""
    return key.replace("model.language_model.", "model.").replace("model.visual.", "visual.")


def save_sharded(state: dict, out: Path, tied: bool) -> None:
    """Two safetensors shards + ``model.safetensors.index.json`` under the 4.x key names (no
    ``lm_head.weight`` when ``tied``)."""
    from safetensors.torch import save_file

    tensors = {legacy_key(k): v.detach().contiguous().clone() for k, v in state.items()
               if not (tied and k == "lm_head.weight")}
    keys = sorted(tensors)
    shards = [keys[: len(keys) // 2], keys[len(keys) // 2 :]]
    weight_map, total = {}, 0
    for i, shard_keys in enumerate(shards, start=1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file({k: tensors[k] for k in shard_keys}, str(out / name), metadata={"format": "pt"})
        for k in shard_keys:
            weight_map[k] = name
            total += tensors[k].numel() * tensors[k].element_size()
    (out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )


def drawn_images(sizes: Iterable[tuple[int, int]]) -> list[Any]:
    """One drawn RGB picture a (width, height): a gradient (channels rotated per picture) with a block."""
    import numpy as np
    from PIL import Image

    images = []
    for k, (w, h) in enumerate(sizes):
        yy, xx = np.mgrid[0:h, 0:w]
        channels = [xx * 255 // (w - 1), yy * 255 // (h - 1), (xx + yy) * 255 // (w + h - 2)]
        pixels = np.stack(channels[k % 3 :] + channels[: k % 3], axis=-1).astype(np.uint8)
        pixels[h // 4 : h // 2, w // 3 : 2 * w // 3] = (30 * k, 200, 255 - 30 * k)
        images.append(Image.fromarray(pixels, "RGB"))
    return images
