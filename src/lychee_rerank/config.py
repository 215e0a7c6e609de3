"""``RerankerConfig``: every knob that decides how a reranker is built, in one frozen record.

The CLI flags, ``ServerSettings`` (``LYCHEE_*``), the batch job spec, fine-tuning and the UI
all build one of these and hand it to :func:`lychee_rerank.backends.create`; the defaults
below are the only place the pixel budget, token limits and image limits are written down.

Standard library only: importing this must stay cheap (``lychee --help`` reads it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, Optional

MiB = 1024 * 1024

#: Visual-token pixel budget per image, as in the published inference scripts: one token per
#: 28x28 patch after merging, so between 4 and 1280 visual tokens per image.
DEFAULT_MIN_PIXELS = 4 * 28 * 28
DEFAULT_MAX_PIXELS = 1280 * 28 * 28

#: Token limits of the model backend (texts are cut to these, and the cut is reported).
DEFAULT_MAX_QUERY_TOKENS = 2048
DEFAULT_MAX_DOC_TOKENS = 4096
#: Padded tokens in one forward pass at most (``batch_size`` caps its pairs).
DEFAULT_MAX_BATCH_TOKENS = 16384
#: Bytes of vision-tower outputs kept for reuse across queries.
DEFAULT_VISION_CACHE_BYTES = 512 * MiB

#: Decompression-bomb limits while decoding one image, for every surface (library, CLI,
#: HTTP, UI). Formerly 64 MP / 32 MiB in the library and 40 MP / 20 MiB in the server; the
#: stricter server values won: 40 MP is above any phone photo (~50 MP sensors bin to 12 MP).
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
DEFAULT_MAX_IMAGE_BYTES = 20 * MiB

ScoringMode = Literal["yesno", "generate"]


@dataclass(frozen=True)
class RerankerConfig:
    """How to build a reranker: which backend and model, and the limits it scores under.

    A recipe, not a loaded model: picklable (Ray workers rebuild from it) and hashable (the UI
    caches one reranker per config).
    """

    backend: str = "auto"
    """``auto`` (the model when one is configured or cached, else lite), ``lychee`` or ``lite``,
    or any name given to :func:`lychee_rerank.backends.register`."""
    model: Optional[str] = None
    """Hub id or local directory (model backend); ``None`` reads ``$LYCHEE_MODEL``."""
    adapter: Optional[str] = None
    merge_adapter: bool = False
    device: str = "auto"
    dtype: str = "auto"
    attn_implementation: str = "auto"
    scoring: ScoringMode = "yesno"
    min_pixels: Optional[int] = DEFAULT_MIN_PIXELS
    max_pixels: Optional[int] = DEFAULT_MAX_PIXELS
    max_query_tokens: int = DEFAULT_MAX_QUERY_TOKENS
    max_doc_tokens: int = DEFAULT_MAX_DOC_TOKENS
    max_batch_tokens: Optional[int] = DEFAULT_MAX_BATCH_TOKENS
    prefix_cache: bool = True
    vision_cache_bytes: int = DEFAULT_VISION_CACHE_BYTES
    escape_special_tokens: bool = True
    """Special-token strings in user text (``<|im_end|>``...) stay plain text; False: upstream."""
    lite_cache_dir: Optional[str] = None
    """Analysis cache of the lite backend (default ``$LYCHEE_CACHE_DIR`` or ~/.cache)."""
    image_max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    image_max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    templates_file: Optional[str] = None

    def with_(self, **changes: Any) -> "RerankerConfig":
        """A copy with ``changes``; ``None`` values keep the current value (unset flags)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def templates_path(self) -> Path | None:
        return Path(self.templates_file) if self.templates_file else None


__all__ = [
    "DEFAULT_MAX_BATCH_TOKENS",
    "DEFAULT_MAX_DOC_TOKENS",
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_QUERY_TOKENS",
    "DEFAULT_MIN_PIXELS",
    "DEFAULT_VISION_CACHE_BYTES",
    "MiB",
    "RerankerConfig",
    "ScoringMode",
]
