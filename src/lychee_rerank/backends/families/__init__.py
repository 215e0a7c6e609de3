"""Checkpoint families of the model backend: what each is, and which one a checkpoint is.

The driver (:mod:`lychee_rerank.backends.lychee`) knows no family. Everything that differs
between, say, lychee-rerank-mm and Qwen3-VL-Reranker (model class, prompt pieces, image
geometry, vision features, positions, score head, truncation) is declared by one adapter
module in this package. This module holds only cheap metadata (no torch import), so that
``lychee models`` and config validation stay fast; the adapter is imported when a model loads.

Adding a family: write ``families/<name>.py`` with a :class:`~.base.FamilyAdapter` subclass,
add one :class:`FamilySpec` line to :data:`FAMILIES` below, and its tests (docs/architecture.md).
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class FamilySpec:
    """What a family is, for listings and detection; :meth:`adapter` builds the working part."""

    name: str
    title: str
    model_types: tuple[str, ...]
    """``config.json`` ``model_type`` values that are this family."""
    architectures: tuple[str, ...]
    """``config.json`` ``architectures`` entries that are this family (checked before model_type)."""
    licence: str
    status: str
    """How it is checked: which reference its scores are tested against."""
    checkpoints: tuple[str, ...]
    adapter_path: str
    """``"module:Class"`` of its :class:`~.base.FamilyAdapter`."""
    modalities: tuple[str, ...] = ("text", "image")
    """What a query or document may hold (the adapter refuses the rest when it is read)."""
    fine_tuning: str = "LoRA (lychee finetune)"
    """Whether and how ``lychee finetune`` trains it."""

    def adapter(self) -> Any:
        """A new adapter instance (imports the module, and so torch, on first use)."""
        module, _, attr = self.adapter_path.partition(":")
        return getattr(importlib.import_module(module), attr)()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "model_types": list(self.model_types),
            "architectures": list(self.architectures), "licence": self.licence, "status": self.status,
            "checkpoints": list(self.checkpoints), "modalities": list(self.modalities), "fine_tuning": self.fine_tuning,
        }


FAMILIES: dict[str, FamilySpec] = {
    spec.name: spec
    for spec in (
        FamilySpec(
            "qwen2_5_vl", "lychee-rerank-mm (Qwen2.5-VL yes/no reranker)", ("qwen2_5_vl",),
            ("Qwen2_5_VLForConditionalGeneration",), "Apache-2.0",
            "parity-tested against a naive one-pair reference (tests/backends)",
            ("vec-ai/lychee-rerank-mm",), "lychee_rerank.backends.families.qwen2_5_vl:Qwen25VLFamily",
        ),
        FamilySpec(
            "qwen3_vl", "Qwen3-VL-Reranker (2B, 8B)", ("qwen3_vl",), ("Qwen3VLForConditionalGeneration",),
            "Apache-2.0", "parity-tested against the official scorer (QwenLM/Qwen3-VL-Embedding, run unchanged)",
            ("Qwen/Qwen3-VL-Reranker-2B", "Qwen/Qwen3-VL-Reranker-8B"),
            "lychee_rerank.backends.families.qwen3_vl:Qwen3VLFamily",
        ),
        FamilySpec(
            "qwen3_reranker", "Qwen3-Reranker (0.6B, 4B, 8B; text only)", ("qwen3",), ("Qwen3ForCausalLM",),
            "Apache-2.0", "parity-tested against the official README code (QwenLM/Qwen3-Embedding, run unchanged); "
            "licence per the model cards (that repository has no LICENSE file)",
            ("Qwen/Qwen3-Reranker-0.6B", "Qwen/Qwen3-Reranker-4B", "Qwen/Qwen3-Reranker-8B"),
            "lychee_rerank.backends.families.qwen3_reranker:Qwen3RerankerFamily", modalities=("text",),
        ),
    )
}


def register_family(spec: FamilySpec) -> None:
    """Add (or replace) a family; its adapter module is imported when a checkpoint of it loads."""
    FAMILIES[spec.name] = spec


def get(name: str) -> FamilySpec:
    """The family called ``name``, or a ValueError naming the known ones."""
    spec = FAMILIES.get(name)
    if spec is None:
        raise ValueError(f"unknown model family {name!r}: known families are {', '.join(sorted(FAMILIES))}")
    return spec


def from_config(config: Mapping[str, Any], where: str = "the checkpoint") -> FamilySpec:
    """The family a ``config.json`` describes: by ``architectures``, then ``model_type``."""
    architectures = [str(a) for a in config.get("architectures") or []]
    model_type = str(config.get("model_type"))
    for spec in FAMILIES.values():
        if any(a in spec.architectures for a in architectures):
            return spec
    for spec in FAMILIES.values():
        if model_type in spec.model_types:
            return spec
    raise ValueError(
        f"{where} is of an unknown checkpoint family (model_type {model_type!r}, architectures "
        f"{architectures or 'none'}): known families are {', '.join(sorted(FAMILIES))}. Pass family=/--family "
        "to score it as one of them, or add one (docs/architecture.md, 'Adding a family')."
    )


def read_config(model: str | Path) -> dict[str, Any]:
    """``config.json`` of a local directory or a hub id (one small file, from the hub cache if offline)."""
    path = Path(model).expanduser()
    if path.is_dir():
        file = path / "config.json"
        if not file.is_file():
            raise ValueError(f"{model} has no config.json: is it a transformers checkpoint directory?")
    elif path.is_absolute() or str(model).startswith((".", "~")) or path.exists():
        raise OSError(f"could not load model {str(model)!r}: no such directory")
    else:
        from huggingface_hub import hf_hub_download

        try:
            file = Path(hf_hub_download(str(model), "config.json"))
        except Exception as exc:  # noqa: BLE001 - offline, unknown repo, no access: one message
            hint = "HF_HUB_OFFLINE is set" if os.environ.get("HF_HUB_OFFLINE") else "is the hub reachable?"
            raise OSError(f"could not load model {str(model)!r} (not a local directory, nor on the hub: {hint}): {exc}") from exc
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{file} is not readable JSON: {exc}") from exc


def detect(model: str | Path, family: str | None = None) -> FamilySpec:
    """The family of checkpoint ``model``: ``family`` when given (checked), else from its config.json."""
    if family is not None:
        return get(family)
    return from_config(read_config(model), where=f"model {str(model)!r}")


__all__ = ["FAMILIES", "FamilySpec", "detect", "from_config", "get", "read_config", "register_family"]
