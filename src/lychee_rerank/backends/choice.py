"""Which backend runs: the full model when one is configured, else the offline lite backend.

Pure policy, no imports of any backend: :func:`lychee_rerank.backends.choose` calls it with
the registered names, and the names it knows by default are the registry's, never a copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

DEFAULT_HUB_MODEL = "vec-ai/lychee-rerank-mm"


@dataclass(frozen=True)
class BackendChoice:
    backend: str
    model: str | None = None
    notice: str | None = None


def hub_cache_has(repo_id: str) -> bool:
    """True when the model's weights are already in the local Hugging Face cache."""
    try:
        from huggingface_hub import scan_cache_dir
    except ImportError:  # pragma: no cover
        return False
    try:
        cache = scan_cache_dir()
    except Exception:  # noqa: BLE001 - no cache directory yet
        return False
    return any(repo.repo_id == repo_id and repo.repo_type == "model" for repo in cache.repos)


def choose_backend(
    backend: str = "auto", model: str | Path | None = None, known: Sequence[str] | None = None
) -> BackendChoice:
    """Resolve ``auto``; check a named backend is one of ``known`` (default: the registered names)."""
    if known is None:
        from . import names  # the registry (lychee_rerank.backends), which imports no backend module

        known = names()
    if backend != "auto" and backend not in known:
        raise ValueError(f"unknown backend {backend!r}: use one of {', '.join(('auto', *known))}")
    configured = str(model) if model else os.environ.get("LYCHEE_MODEL") or None
    if backend == "lychee":
        return BackendChoice("lychee", configured or DEFAULT_HUB_MODEL)
    if backend != "auto":
        return BackendChoice(backend, configured if backend != "lite" else None)
    if configured:
        return BackendChoice("lychee", configured)
    if hub_cache_has(DEFAULT_HUB_MODEL):
        return BackendChoice("lychee", DEFAULT_HUB_MODEL)
    from .lite.about import LITE_NOTE

    return BackendChoice("lite", notice=f"lychee: no model configured, using the offline lite backend. {LITE_NOTE}")
