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
    architecture_suffixes: tuple[str, ...] = ()
    """``architectures`` endings that are this family (a whole class of checkpoints, checked last)."""
    peft_adapter: bool = False
    """Published as a LoRA adapter (``adapter_config.json``) on a base model: detected only there,
    by the base's ``config.json``."""
    scorer: str = ""
    """``"module:function"`` building the backend for families the causal yes/no driver cannot run
    (``factory(config, spec, **options)``); empty: :class:`~lychee_rerank.backends.lychee.LycheeBackend`."""
    query_modalities: tuple[str, ...] | None = None
    """What a query may hold, where it differs from :attr:`modalities` (``None``: the same)."""
    document_modalities: tuple[str, ...] | None = None
    """What a document may hold, where it differs from :attr:`modalities` (``None``: the same)."""

    def adapter(self) -> Any:
        """A new adapter instance (imports the module, and so torch, on first use)."""
        module, _, attr = self.adapter_path.partition(":")
        return getattr(importlib.import_module(module), attr)()

    def side_modalities(self, side: str) -> tuple[str, ...]:
        """What a ``"query"`` or a ``"document"`` may hold: the per-side rule, else :attr:`modalities`."""
        own = self.query_modalities if side == "query" else self.document_modalities
        return own if own is not None else self.modalities

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "model_types": list(self.model_types),
            "architectures": list(self.architectures), "licence": self.licence, "status": self.status,
            "checkpoints": list(self.checkpoints), "modalities": list(self.modalities), "fine_tuning": self.fine_tuning,
            "architecture_suffixes": list(self.architecture_suffixes), "peft_adapter": self.peft_adapter,
            **({"query_modalities": list(self.query_modalities)} if self.query_modalities is not None else {}),
            **({"document_modalities": list(self.document_modalities)} if self.document_modalities is not None else {}),
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
        FamilySpec(
            "cross_encoder", "Sequence-classification cross-encoders (text only)", (), (),
            "per checkpoint (see its card)",
            "parity-tested against sentence-transformers CrossEncoder.predict",
            ("BAAI/bge-reranker-v2-m3", "BAAI/bge-reranker-base", "mixedbread-ai/mxbai-rerank-base-v1",
             "cross-encoder/ms-marco-MiniLM-L6-v2", "Alibaba-NLP/gte-multilingual-reranker-base"),
            "", modalities=("text",), architecture_suffixes=("ForSequenceClassification",),
            fine_tuning="not applicable (lychee finetune trains the generative yes/no families; "
            "train cross-encoders with sentence-transformers)",
            scorer="lychee_rerank.backends.cross_encoder:create_backend",
        ),
        FamilySpec(
            "jina_m0", "jina-reranker-m0 (Qwen2-VL, MLP score head)", (), ("JinaVLForRanking",),
            "CC-BY-NC-4.0 (non-commercial)",
            "parity-tested against a reference written from the published modelling code",
            ("jinaai/jina-reranker-m0",), "lychee_rerank.backends.families.jina_m0:JinaM0Family",
            fine_tuning="not applicable (an MLP score head, not a yes/no language-model answer)",
        ),
        FamilySpec(
            "mono_qwen2_vl", "MonoQwen2-VL (Qwen2-VL-2B + LoRA adapter; image documents)", ("qwen2_vl",),
            ("Qwen2VLForConditionalGeneration",), "Apache-2.0",
            "parity-tested against rerankers' MonoVLMRanker",
            ("lightonai/MonoQwen2-VL-v0.1",), "lychee_rerank.backends.families.mono_qwen2_vl:MonoQwen2VLFamily",
            peft_adapter=True, query_modalities=("text",), document_modalities=("image",),
            fine_tuning="LoRA (lychee finetune), on the base with the published adapter merged",
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


def from_config(config: Mapping[str, Any], where: str = "the checkpoint", *, peft_adapter: bool = False) -> FamilySpec:
    """The family a ``config.json`` describes: by ``architectures``, then ``model_type``, then
    architecture endings. ``peft_adapter``: the config is the base of a LoRA adapter directory,
    and families published that way come first."""
    architectures = [str(a) for a in config.get("architectures") or []]
    model_type = str(config.get("model_type"))
    specs = sorted(FAMILIES.values(), key=lambda spec: spec.peft_adapter != peft_adapter)
    specs = [spec for spec in specs if peft_adapter or not spec.peft_adapter]
    for rule in (
        lambda spec: any(a in spec.architectures for a in architectures),
        lambda spec: model_type in spec.model_types,
        lambda spec: any(a.endswith(spec.architecture_suffixes) for a in architectures) if spec.architecture_suffixes else False,
    ):
        for spec in specs:
            if rule(spec):
                return spec
    raise ValueError(
        f"{where} is of an unknown checkpoint family (model_type {model_type!r}, architectures "
        f"{architectures or 'none'}): known families are {', '.join(sorted(FAMILIES))}. Pass family=/--family "
        "to score it as one of them, or add one (docs/architecture.md, 'Adding a family')."
    )


def local_dir(model: str | Path, *, what: str) -> Path | None:
    """``model`` as a local directory, ``None`` for a hub id; OSError for a path that is not a
    directory (``./x``, ``/x``, ``~/x``, a file): one rule for checkpoints and adapters alike."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if path.is_absolute() or str(model).startswith((".", "~")) or path.exists():
        raise OSError(f"could not load {what} {str(model)!r}: no such directory")
    return None


def read_json(model: str | Path, filename: str = "config.json", *, required: bool = True) -> dict[str, Any] | None:
    """``filename`` of a local directory or a hub id (one small file, from the hub cache if offline);
    ``None`` for a missing file that is not ``required``."""
    path = local_dir(model, what="model")
    if path is not None:
        file = path / filename
        if not file.is_file():
            if not required:
                return None
            raise ValueError(f"{model} has no {filename}: is it a transformers checkpoint directory?")
    else:
        from huggingface_hub import hf_hub_download

        try:
            file = Path(hf_hub_download(str(model), filename))
        except Exception as exc:  # noqa: BLE001 - offline, unknown repo, no access: one message
            if not required:
                return None
            hint = "HF_HUB_OFFLINE is set" if os.environ.get("HF_HUB_OFFLINE") else "is the hub reachable?"
            raise OSError(f"could not load model {str(model)!r} (not a local directory, nor on the hub: {hint}): {exc}") from exc
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{file} is not readable JSON: {exc}") from exc


def read_config(model: str | Path) -> dict[str, Any]:
    """``config.json`` of a local directory or a hub id."""
    config = read_json(model)
    assert config is not None
    return config


def adapter_base(model: str | Path) -> str | None:
    """The base model a LoRA adapter directory (``adapter_config.json``) names, or ``None``."""
    adapter = read_json(model, "adapter_config.json", required=False)
    if adapter is None:
        return None
    base = adapter.get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{model}/adapter_config.json names no base_model_name_or_path")
    return str(base)


def detect(model: str | Path, family: str | None = None) -> FamilySpec:
    """The family of checkpoint ``model``: ``family`` when given (checked), else from its
    ``config.json``, or for a LoRA adapter directory from its base's (``adapter_config.json``)."""
    if family is not None:
        return get(family)
    base = adapter_base(model)
    if base is None:
        return from_config(read_config(model), where=f"model {str(model)!r}")
    has_config = read_json(model, required=False) is not None
    source, seen = (model if has_config else base), {str(model)}
    # An adapter trained on top of an adapter (lychee finetune on a LoRA-published family): its base's base.
    while not has_config and read_json(source, required=False) is None and str(source) not in seen:
        seen.add(str(source))
        source = adapter_base(source) or source
    config = read_config(source)
    return from_config(config, where=f"model {str(model)!r} (a LoRA adapter on {base!r})", peft_adapter=True)


__all__ = ["FAMILIES", "FamilySpec", "adapter_base", "detect", "from_config", "get", "read_config", "read_json", "register_family"]
