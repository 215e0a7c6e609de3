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

# The per-image pixel budget and the query/document token limits have no defaults here: each
# checkpoint family declares its own, in its own units (lychee-rerank-mm: 4..1280 tokens of
# 28x28 pixels, 2,048/4,096 text tokens; Qwen3-VL-Reranker: 4..1800 tokens of 32x32 pixels,
# one 10,240-token budget), in ``lychee_rerank.backends.families``. ``None`` means "the family's".
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
    family: Optional[str] = None
    """Checkpoint family (``lychee models`` lists them); ``None`` reads it from the checkpoint's config.json."""
    trust_remote_code: bool = False
    """Let transformers run code shipped with the checkpoint (never needed by the built-in families)."""
    adapter: Optional[str] = None
    merge_adapter: bool = False
    device: str = "auto"
    dtype: str = "auto"
    attn_implementation: str = "auto"
    scoring: ScoringMode = "yesno"
    min_pixels: Optional[int] = None
    """Pixels of one image at least (upscaled to it); ``None``: the family's default."""
    max_pixels: Optional[int] = None
    """Pixels of one image at most (downscaled to it); ``None``: the family's default."""
    max_query_tokens: Optional[int] = None
    """Query text tokens kept; ``None``: the family's default."""
    max_doc_tokens: Optional[int] = None
    """Document text tokens kept; ``None``: the family's default."""
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
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "DEFAULT_VISION_CACHE_BYTES",
    "MiB",
    "RerankerConfig",
    "ScoringMode",
]
