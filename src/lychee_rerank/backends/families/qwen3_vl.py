"""Qwen3-VL-Reranker (2B, 8B): scored exactly as its official scorer does.

Official scorer: ``src/models/qwen3_vl_reranker.py`` of QwenLM/Qwen3-VL-Embedding (vendored
unchanged in ``tests/official/`` and run there as the parity reference). What it does, and so
what this adapter declares:

* ``Qwen3VLForConditionalGeneration``; the score is ``sigmoid(h · (lm_head[yes] − lm_head[no]))``
  on the last hidden state ``h``, the one-row head formed in the model's dtype;
* the lychee system turn, default instruction "Given a search query, retrieve relevant
  candidates that answer the query.", ``"NULL"`` for a side with no image and no text;
* images resized before the processor (``qwen_vl_utils.fetch_image``: RGB on white, a 32-pixel
  grid, 4·32² to 1800·32² pixels, PIL's bicubic resize), then processed with ``do_resize=False``;
  the vision tower returns merged embeddings plus DeepStack features for early decoder layers,
  and the vision cache keeps both;
* one 10,240-token budget for the whole prompt: past it, text tokens are dropped from the end
  while every special token (image pads included) and the last five ids are kept.
Videos are not supported (inputs are text and images).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from PIL import Image

from . import FAMILIES
from ...prompt import SYSTEM_PROMPT, PromptSpec
from .base import Loaded
from .qwen_vl import QwenVLFamily
from ..loading import from_pretrained, quiet_processor_warnings

DEFAULT_INSTRUCTION = "Given a search query, retrieve relevant candidates that answer the query."
PATCH = 16
FACTOR = 32
MAX_RATIO = 200
#: The official scorer's whole-prompt budget, and the ids it always keeps at the end
#: (``<|im_end|>\n<|im_start|>assistant\n``).
MAX_LENGTH = 10240
KEPT_TAIL = 5


def smart_resize(height: int, width: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """(height, width) on the 32-pixel grid within the budget: ``qwen_vl_utils``' rule, step by step."""
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(f"absolute aspect ratio must be smaller than {MAX_RATIO}, got {max(height, width) / min(height, width)}")
    h = max(FACTOR, round(height / FACTOR) * FACTOR)
    w = max(FACTOR, round(width / FACTOR) * FACTOR)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = math.floor(height / beta / FACTOR) * FACTOR
        w = math.floor(width / beta / FACTOR) * FACTOR
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / FACTOR) * FACTOR
        w = math.ceil(width * beta / FACTOR) * FACTOR
    return h, w


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, transparent pixels on white (as the official preprocessing does). An RGB image (every
    decoded input is one) is returned as it is: no copy of its pixels before the resize."""
    if image.mode == "RGB":
        return image
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.split()[3])
        return background
    return image.convert("RGB")


class Qwen3VLFamily(QwenVLFamily):
    spec = FAMILIES["qwen3_vl"]
    prompt = PromptSpec(SYSTEM_PROMPT, DEFAULT_INSTRUCTION, empty_side="NULL")
    min_pixels = 4 * FACTOR * FACTOR
    max_pixels = 1800 * FACTOR * FACTOR
    # No per-text limits of its own: each text is bounded by the whole budget, then truncate() applies it.
    max_query_tokens = MAX_LENGTH
    max_doc_tokens = MAX_LENGTH
    difference_head = True

    def load(self, name, *, device, dtype, attn_implementation, min_pixels, max_pixels, trust_remote_code) -> Loaded:
        from transformers import Qwen3VLForConditionalGeneration

        model, processor, attn = from_pretrained(
            name, Qwen3VLForConditionalGeneration, dtype=dtype, attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code, device=device,
        )
        return Loaded(model, processor, attn)

    def grid(self, width: int, height: int, min_pixels: int, max_pixels: int) -> tuple[int, int, int]:
        h, w = smart_resize(height, width, min_pixels, max_pixels)
        return (1, h // PATCH, w // PATCH)

    def preprocess(self, processor: Any, images: Sequence[Image.Image], min_pixels: int, max_pixels: int) -> dict:
        resized = []
        for image in images:
            rgb = to_rgb(image)
            h, w = smart_resize(rgb.height, rgb.width, min_pixels, max_pixels)
            resized.append(rgb.resize((w, h), Image.Resampling.BICUBIC))
        with quiet_processor_warnings():
            out = processor.image_processor(images=resized, do_resize=False, return_tensors="pt")
        return {"pixel_values": out["pixel_values"], "image_grid_thw": out["image_grid_thw"]}

    def vision(self, model: Any, inputs: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, tuple[torch.Tensor, ...]]]:
        out = self.vision_output(model, inputs)
        # Per image: its merged embeddings, and its slice of every DeepStack layer's features.
        return [(merged, tuple(layer[i] for layer in out.deepstack_features)) for i, merged in enumerate(out.pooler_output)]

    def encoder_inputs(self, features: Sequence[Any]) -> dict[str, Any]:
        if not features:
            return {}
        from transformers.models.qwen3_vl.modeling_qwen3_vl import BaseModelOutputWithDeepstackFeatures

        layers = len(features[0][1])
        output = BaseModelOutputWithDeepstackFeatures(
            pooler_output=tuple(f[0] for f in features),
            deepstack_features=[tuple(f[1][k] for f in features) for k in range(layers)],
        )
        return {"mm_encoder_outputs": {"image": output}}

    def truncate(self, ids: list[int], special_ids: frozenset[int]) -> tuple[list[int], bool]:
        body, tail = ids[:-KEPT_TAIL], ids[-KEPT_TAIL:]
        if len(body) <= MAX_LENGTH:
            return ids, False
        keep = MAX_LENGTH - sum(1 for t in body if t in special_ids)
        kept: list[int] = []
        for t in body:
            if t in special_ids:
                kept.append(t)
            elif keep > 0:
                kept.append(t)
                keep -= 1
        return kept + tail, True
