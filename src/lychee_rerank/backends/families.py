"""Known checkpoint families of the model backend, by ``config.model_type``.

The fast path (token ids built here, a shared-prefix KV cache, cached vision features, 3D rope
positions passed explicitly) depends on model internals: ``model.model.get_rope_index``,
``get_image_features`` and the ``mm_encoder_outputs`` argument. A family is listed here once
it is known to have them (``fast_path=True``) or known to score correctly through the plain
processor + model call (``fast_path=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Family:
    """What the backend may rely on for one ``model_type``."""

    model_type: str
    fast_path: bool
    note: str = ""


FAMILIES: dict[str, Family] = {
    f.model_type: f
    for f in (
        Family("qwen2_5_vl", True, "lychee-rerank-mm and Qwen2.5-VL-Instruct"),
        Family("qwen2_vl", True, "Qwen2-VL: same rope helper and vision interface"),
    )
}


def register_family(family: Family) -> None:
    """Add (or replace) a family; see the module docstring for what ``fast_path`` promises."""
    FAMILIES[family.model_type] = family


def family_of(model: Any) -> Family:
    """The family of a loaded transformers model, or a ValueError that says how to add one."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    family = FAMILIES.get(str(model_type))
    if family is None:
        known = ", ".join(sorted(FAMILIES))
        raise ValueError(
            f"unknown checkpoint family {model_type!r} (known: {known}). If it is a chat VLM that scores "
            "through a plain processor + model call, register it: lychee_rerank.backends.families."
            f"register_family(Family({model_type!r}, fast_path=False)); with fast_path=True only if it has "
            "Qwen-VL's get_rope_index/get_image_features interface."
        )
    return family
