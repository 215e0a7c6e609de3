"""Resolve device, dtype and attention implementation; load model and processor.

The "auto" choices follow what the hardware can do (BF16 and Flash-Attention-2 where the GPU
has them) and are logged and kept on the reranker, because a surprising score or speed is
most often explained by one of them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

logger = logging.getLogger("lychee_rerank")

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}
ATTN_IMPLEMENTATIONS = ("flash_attention_2", "sdpa", "eager")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available on this machine")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    key = str(dtype).lower().removeprefix("torch.")
    if key not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: use 'auto', 'float32', 'bfloat16' or 'float16'")
    return _DTYPES[key]


def flash_attn_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def resolve_attn(attn: str | None, device: torch.device, dtype: torch.dtype) -> str:
    if attn is None or attn == "auto":
        if device.type == "cuda" and dtype in (torch.float16, torch.bfloat16) and flash_attn_available():
            return "flash_attention_2"
        return "sdpa"
    if attn not in ATTN_IMPLEMENTATIONS:
        raise ValueError(f"unknown attn_implementation {attn!r}: use 'auto' or one of {ATTN_IMPLEMENTATIONS}")
    if attn == "flash_attention_2" and not flash_attn_available():
        raise ValueError("attn_implementation='flash_attention_2' asked for, but the flash_attn package is not installed")
    return attn


@dataclass(frozen=True)
class LoadedModel:
    """A loaded checkpoint and every choice made while loading it (kept for logs and ``info()``)."""

    model: Any
    processor: Any
    device: torch.device
    dtype: torch.dtype
    attn_implementation: str
    name: str
    family: Any
    """The checkpoint family's adapter (:class:`~.families.base.FamilyAdapter`)."""
    min_pixels: int
    max_pixels: int

    @property
    def tokenizer(self) -> Any:
        """The processor's tokenizer (or the processor itself, for a text family)."""
        return self.family.tokenizer(self.processor)


def load(
    model_name_or_path: str | Path,
    *,
    device: str | torch.device | None = "auto",
    dtype: str | torch.dtype | None = "auto",
    attn_implementation: str | None = "auto",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    adapter: str | Path | None = None,
    merge_adapter: bool = False,
    trust_remote_code: bool = False,
    family: str | None = None,
) -> LoadedModel:
    """Load a checkpoint (local directory or hub id) of a known family, and its processor.

    The family comes from the checkpoint's ``config.json`` unless ``family`` names one; its
    adapter loads the model and supplies the defaults left as ``None`` here (pixel budget).
    """
    from .families import detect

    name = str(model_name_or_path)
    adapter_family = detect(name, family).adapter()
    dev, dt, attn = adapter_family.resolve(device, dtype, attn_implementation)
    lo = adapter_family.min_pixels if min_pixels is None else int(min_pixels)
    hi = adapter_family.max_pixels if max_pixels is None else int(max_pixels)
    if lo > hi:
        raise ValueError(f"min_pixels ({lo}) is larger than max_pixels ({hi})")
    loaded = adapter_family.load(
        name, device=dev, dtype=dt, attn_implementation=attn, min_pixels=lo, max_pixels=hi,
        trust_remote_code=trust_remote_code,
    )
    model = loaded.model
    if adapter is not None:
        model = attach_adapter(model, adapter, merge=merge_adapter).to(dev).eval()
    tokenizer = adapter_family.tokenizer(loaded.processor)
    if tokenizer.pad_token is None:  # a missing pad token crashes batched calls in peers
        tokenizer.pad_token = tokenizer.eos_token
    logger.info(
        "loaded %s (%s) on %s, dtype=%s, attn_implementation=%s",
        name, adapter_family.name, dev, str(dt).removeprefix("torch."), loaded.attn_implementation,
    )
    return LoadedModel(
        model=model, processor=loaded.processor, device=dev, dtype=dt, attn_implementation=loaded.attn_implementation,
        name=name, family=adapter_family, min_pixels=lo, max_pixels=hi,
    )


def from_pretrained(
    name: str, model_class: Any, *, dtype: torch.dtype, attn_implementation: str, trust_remote_code: bool,
    processor_class: Any = None, processor_kwargs: dict[str, Any] | None = None, device: torch.device,
) -> tuple[Any, Any, str]:
    """``(model, processor, attention)`` of ``name`` through the given transformers classes.

    Shared by the family adapters: one message for a checkpoint that is not there, and the
    fallback to eager attention (same ``trust_remote_code``) for a model without SDPA.
    """
    from transformers import AutoProcessor

    processor_class = processor_class or AutoProcessor
    attn = attn_implementation
    try:
        processor = processor_class.from_pretrained(name, trust_remote_code=trust_remote_code, **(processor_kwargs or {}))
        try:
            model = model_class.from_pretrained(name, dtype=dtype, attn_implementation=attn, trust_remote_code=trust_remote_code)
        except ValueError as exc:
            if attn != "sdpa" or "sdpa" not in str(exc).lower():
                raise
            logger.warning("sdpa not supported by %s; falling back to eager attention", name)
            attn = "eager"
            model = model_class.from_pretrained(name, dtype=dtype, attn_implementation=attn, trust_remote_code=trust_remote_code)
    except OSError as exc:
        hint = "" if Path(name).exists() else " (not a local directory; is the hub reachable, or is HF_HUB_OFFLINE set?)"
        raise OSError(f"could not load model {name!r}{hint}: {exc}") from exc
    return model.to(device).eval(), processor, attn


def set_pixel_budget(processor: Any, min_pixels: int | None, max_pixels: int | None) -> None:
    """Make ``size`` the one source of truth for the per-image pixel budget."""
    ip = getattr(processor, "image_processor", None)
    size = getattr(ip, "size", None)
    if ip is None or size is None:
        return
    current = dict(size.items()) if hasattr(size, "items") else dict(vars(size))
    current = {k: v for k, v in current.items() if v is not None}
    if min_pixels is not None:
        current["shortest_edge"] = int(min_pixels)
    if max_pixels is not None:
        current["longest_edge"] = int(max_pixels)
    current.pop("min_pixels", None)
    current.pop("max_pixels", None)
    ip.size = type(size)(**current) if not isinstance(size, dict) else current
    for attr in ("min_pixels", "max_pixels"):
        if getattr(ip, attr, None) is not None:
            setattr(ip, attr, None)


def attach_adapter(model: Any, adapter: str | Path, merge: bool = False, key_mapping: dict[str, str] | None = None) -> Any:
    """Seam for LoRA adapters (peft); the fine-tuning toolkit writes what this reads.

    ``key_mapping``: regex -> replacement on the adapter's module paths (peft's own argument), for
    an adapter saved under older transformers module names; every tensor of the file must then
    land in a LoRA weight of the model, or a ValueError says which did not (peft only warns).
    """
    from ..extras import require

    require("train", "loading a LoRA adapter")
    from peft import PeftModel

    adapter = _adapter_dir(adapter)
    with warnings.catch_warnings():  # peft probes a property transformers 5 deprecates
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        if key_mapping is None:
            peft_model = PeftModel.from_pretrained(model, str(adapter))
        else:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                peft_model = PeftModel.from_pretrained(model, str(adapter), key_mapping=key_mapping)
            unloaded = [str(w.message) for w in caught if "missing adapter keys" in str(w.message)]
            if unloaded:
                raise ValueError(f"LoRA adapter {adapter!r} does not fit the model: {unloaded[0][:500]}")
    return peft_model.merge_and_unload() if merge else peft_model


def _adapter_dir(adapter: str | Path) -> Path:
    """A local adapter directory, or a hub id's snapshot (from the hub cache when offline): the
    same path as a base model's hub id, so a published adapter loads air-gapped once cached."""
    from huggingface_hub import snapshot_download

    from .families import local_dir

    path = local_dir(adapter, what="LoRA adapter")
    if path is not None:
        return path

    try:  # the adapter's own files only: a repo may hold other things beside it
        return Path(snapshot_download(str(adapter), allow_patterns=["adapter_config.json", "adapter_model.*"]))
    except Exception as exc:  # noqa: BLE001 - offline and not cached, unknown repo, no access: one message
        hint = "HF_HUB_OFFLINE is set and it is not in the hub cache" if os.environ.get("HF_HUB_OFFLINE") else "is the hub reachable?"
        raise OSError(f"LoRA adapter {str(adapter)!r} is not a local directory nor on the hub ({hint}): {exc}") from exc


@contextlib.contextmanager
def quiet_processor_warnings() -> Iterator[None]:
    """4.x-layout preprocessor configs make transformers 5 warn on every processor call."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*min_pixels.*max_pixels.*", category=FutureWarning)
        yield
