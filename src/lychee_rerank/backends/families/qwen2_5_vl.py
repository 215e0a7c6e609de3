"""lychee-rerank-mm: a Qwen2.5-VL-Instruct fine-tuned to answer "yes"/"no" (and Qwen2.5-VL chat models).

Facts from the published inference scripts: ``Qwen2_5_VLForConditionalGeneration``; 14-pixel
patches merged 2x2 (one visual token per 28x28 pixels), 4 to 1280 tokens an image, resized by
the processor; score = sigmoid(logit(yes) - logit(no)) at the last position; texts cut to
2,048 (query) and 4,096 (document) tokens. ``scoring="generate"`` lets a chat model that was
not trained as a reranker answer 0-10 instead.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from PIL import Image

from . import FAMILIES
from ...prompt import DEFAULT_INSTRUCTION, GENERATE_SYSTEM_PROMPT, SYSTEM_PROMPT, PromptSpec
from .base import Loaded
from .qwen_vl import QwenVLFamily
from ..loading import from_pretrained, quiet_processor_warnings, set_pixel_budget

PATCH = 14


class Qwen25VLFamily(QwenVLFamily):
    spec = FAMILIES["qwen2_5_vl"]
    prompt = PromptSpec(SYSTEM_PROMPT, DEFAULT_INSTRUCTION, generate_system=GENERATE_SYSTEM_PROMPT)
    min_pixels = 4 * 28 * 28
    max_pixels = 1280 * 28 * 28
    max_query_tokens = 2048
    max_doc_tokens = 4096

    def load(self, name, *, device, dtype, attn_implementation, min_pixels, max_pixels, trust_remote_code) -> Loaded:
        from transformers import AutoModelForImageTextToText

        # 4.x-era preprocessor_config.json files carry their own min/max_pixels, which override a
        # ``size=`` argument; passing min/max_pixels by name is what overrides them in turn.
        model, processor, attn = from_pretrained(
            name, AutoModelForImageTextToText, dtype=dtype, attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code, device=device,
            processor_kwargs={"min_pixels": min_pixels, "max_pixels": max_pixels},
        )
        set_pixel_budget(processor, min_pixels, max_pixels)
        return Loaded(model, processor, attn)

    def grid(self, width: int, height: int, min_pixels: int, max_pixels: int) -> tuple[int, int, int]:
        # The processor's own resize rule (it resizes; the grid must be what it will produce).
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

        h, w = smart_resize(height, width, factor=PATCH * self.merge, min_pixels=min_pixels, max_pixels=max_pixels)
        return (1, h // PATCH, w // PATCH)

    def preprocess(self, processor: Any, images: Sequence[Image.Image], min_pixels: int, max_pixels: int) -> dict:
        # The processor was given this budget at load (set_pixel_budget): it resizes as scripts do.
        with quiet_processor_warnings():
            out = processor.image_processor(images=list(images), return_tensors="pt")
        return {"pixel_values": out["pixel_values"], "image_grid_thw": out["image_grid_thw"]}

    def vision(self, model: Any, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return list(self.vision_output(model, inputs).pooler_output)

    def encoder_inputs(self, features: Sequence[Any]) -> dict[str, Any]:
        if not features:
            return {}
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        return {"mm_encoder_outputs": {"image": BaseModelOutputWithPooling(pooler_output=tuple(features))}}
