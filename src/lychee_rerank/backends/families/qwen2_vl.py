"""Qwen2-VL mechanics shared by the families built on Qwen2-VL-2B (MonoQwen2-VL, jina-reranker-m0).

Facts of ``Qwen2VLForConditionalGeneration`` and ``Qwen2VLProcessor`` (transformers 5.x): 14-pixel
patches merged 2x2 (one visual token per 28x28 pixels); images resized by the processor with
transformers' ``smart_resize`` (factor 28, aspect ratio at most 200); the published
``Qwen/Qwen2-VL-2B-Instruct`` ``preprocessor_config.json`` budget is 3,136 to 12,845,056 pixels
(4 to 16,384 visual tokens); the vision tower's merged embeddings (``pooler_output``) are all the
language model needs of an image, handed over as ``mm_encoder_outputs``; 3-D rope positions from
``model.model.get_rope_index`` (shared with the other Qwen-VL families, :mod:`.qwen_vl`).

What this module offers (public names, kept stable for the families that import them):

* constants :data:`PATCH` (14), :data:`MERGE` (2), :data:`FACTOR` (28), :data:`MIN_PIXELS`,
  :data:`MAX_PIXELS` (the published processor's budget), :data:`MODEL_CLASS` (the transformers
  class name);
* :data:`LEGACY_KEY_MAPPING` -- 4.x -> 5.x module paths, for a LoRA adapter saved under 4.x;
* :func:`grid` -- the ``(t, h, w)`` patch grid of an image from its size alone (``ValueError``
  for a shape the processor refuses);
* :func:`load_model` -- model (any ``Qwen2VLForConditionalGeneration``-compatible class) and
  processor, the pixel budget set on the processor; the processor may come from another
  directory (an adapter repository ships none);
* :func:`preprocess` -- ``pixel_values`` and ``image_grid_thw`` of decoded images, on CPU;
* :func:`image_features` -- one merged-embedding tensor per image;
* :func:`encoder_inputs` -- the backbone keyword arguments that hand those features over;
* :class:`Qwen2VLAdapter` -- a :class:`~.qwen_vl.QwenVLFamily` with all of the above wired in
  (``load``, ``grid``, ``preprocess``, ``vision``, ``encoder_inputs``; ``positions``,
  ``image_tokens`` and the yes/no ``head`` are inherited). A family subclasses it and declares
  ``spec``, ``prompt``, its text limits, and overrides ``head``/``render``/``load`` where it differs.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from PIL import Image

from .base import Loaded
from .qwen_vl import QwenVLFamily
from ..loading import from_pretrained, quiet_processor_warnings, set_pixel_budget

PATCH = 14
MERGE = 2
FACTOR = PATCH * MERGE
#: ``min_pixels`` / ``max_pixels`` of Qwen/Qwen2-VL-2B-Instruct's ``preprocessor_config.json``.
MIN_PIXELS = 3136
MAX_PIXELS = 12845056
MODEL_CLASS = "Qwen2VLForConditionalGeneration"
#: transformers-4.x module paths (``model.layers.*``, ``visual.*``) -> 5.x ones, as a peft
#: ``key_mapping`` for LoRA adapters saved under 4.x (peft alone would leave them unloaded).
LEGACY_KEY_MAPPING = {
    r"^visual\.": "model.visual.",
    r"^model\.(?!language_model\.|visual\.)": "model.language_model.",
}


def grid(width: int, height: int, min_pixels: int, max_pixels: int) -> tuple[int, int, int]:
    """``(1, h, w)`` patches the processor will produce for an image of this size (its own rule)."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    h, w = smart_resize(height, width, factor=FACTOR, min_pixels=min_pixels, max_pixels=max_pixels)
    return (1, h // PATCH, w // PATCH)


def model_class() -> Any:
    """The transformers class of a Qwen2-VL checkpoint."""
    import transformers

    return getattr(transformers, MODEL_CLASS)


def load_model(
    name: str, *, device: torch.device, dtype: torch.dtype, attn_implementation: str, trust_remote_code: bool,
    min_pixels: int, max_pixels: int, processor_name: str | None = None, model_cls: Any = None,
) -> Loaded:
    """Model (eval, on ``device``) and processor of checkpoint ``name``.

    ``processor_name``: where the processor files are, when not beside the weights (an adapter's
    base). ``model_cls``: a subclass or compatible class (default ``Qwen2VLForConditionalGeneration``).
    4.x-era ``preprocessor_config.json`` files carry their own min/max_pixels, which override a
    ``size=`` argument; passing them by name overrides those in turn, then ``size`` is made the one
    source of truth (:func:`~lychee_rerank.backends.loading.set_pixel_budget`).
    """
    from transformers import AutoProcessor

    model, processor, attn = from_pretrained(
        name, model_cls or model_class(), dtype=dtype, attn_implementation=attn_implementation,
        trust_remote_code=trust_remote_code, device=device,
        processor_class=_ProcessorFrom(processor_name, AutoProcessor) if processor_name else None,
        processor_kwargs={"min_pixels": min_pixels, "max_pixels": max_pixels},
    )
    set_pixel_budget(processor, min_pixels, max_pixels)
    return Loaded(model, processor, attn)


class _ProcessorFrom:
    """A processor class whose ``from_pretrained`` reads another directory (``from_pretrained`` asks it by name)."""

    def __init__(self, source: str, cls: Any) -> None:
        self.source, self.cls = source, cls

    def from_pretrained(self, _name: str, **kwargs: Any) -> Any:
        return self.cls.from_pretrained(self.source, **kwargs)


def preprocess(processor: Any, images: Sequence[Image.Image]) -> dict[str, torch.Tensor]:
    """The vision tower's inputs for decoded RGB images; the processor resizes (its budget was set at load)."""
    with quiet_processor_warnings():
        out = processor.image_processor(images=list(images), return_tensors="pt")
    return {"pixel_values": out["pixel_values"], "image_grid_thw": out["image_grid_thw"]}


def image_features(model: Any, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Merged vision embeddings, one ``[tokens, hidden]`` tensor per image (``model.model.get_image_features``)."""
    device = model.device
    pixels = inputs["pixel_values"].to(device, model.dtype)
    return list(model.model.get_image_features(pixels, inputs["image_grid_thw"].to(device)).pooler_output)


def encoder_inputs(features: Sequence[Any]) -> dict[str, Any]:
    """``mm_encoder_outputs`` for the backbone (``Qwen2VLModel.forward``); ``{}`` without images."""
    if not features:
        return {}
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    return {"mm_encoder_outputs": {"image": BaseModelOutputWithPooling(pooler_output=tuple(features))}}


class Qwen2VLAdapter(QwenVLFamily):
    """Qwen2-VL loading, geometry, preprocessing and vision features (subclasses add the rest)."""

    min_pixels = MIN_PIXELS
    max_pixels = MAX_PIXELS
    merge = MERGE

    def processor_source(self, name: str) -> str | None:
        """Where the processor files of checkpoint ``name`` are (``None``: beside the weights)."""
        return None

    def load(self, name, *, device, dtype, attn_implementation, min_pixels, max_pixels, trust_remote_code) -> Loaded:
        return load_model(
            name, device=device, dtype=dtype, attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code, min_pixels=min_pixels, max_pixels=max_pixels,
            processor_name=self.processor_source(name),
        )

    def grid(self, width: int, height: int, min_pixels: int, max_pixels: int) -> tuple[int, int, int]:
        return grid(width, height, min_pixels, max_pixels)

    def preprocess(self, processor: Any, images: Sequence[Image.Image], min_pixels: int, max_pixels: int) -> dict:
        return preprocess(processor, images)

    def vision(self, model: Any, inputs: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return image_features(model, inputs)

    def encoder_inputs(self, features: Sequence[Any]) -> dict[str, Any]:
        return encoder_inputs(features)


__all__ = [
    "FACTOR", "LEGACY_KEY_MAPPING", "MAX_PIXELS", "MERGE", "MIN_PIXELS", "MODEL_CLASS", "PATCH", "Qwen2VLAdapter", "encoder_inputs",
    "grid", "image_features", "load_model", "model_class", "preprocess",
]
