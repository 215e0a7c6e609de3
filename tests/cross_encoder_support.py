"""The tiny cross-encoder checkpoint, for every test folder (registered in tests/conftest.py).

``cross_encoder_dir`` (session scope): a tiny random ``BertForSequenceClassification`` in the
published layout of ``cross-encoder/ms-marco-MiniLM-L6-v2`` with the real bert-base-uncased
vocabulary (``lychee_rerank.testing.tiny_cross_encoder``; ~4 MB, a few seconds), one label and no
saved activation (sentence-transformers applies sigmoid). ``cross_encoder_reference`` (session
scope): sentence-transformers' ``CrossEncoder`` on it, CPU, FP32. ``cross_encoder_reranker``
(session scope): the library on it (FP32, CPU), every surface's yardstick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.family_support import built_once, library_reranker

FAMILY = "cross_encoder"
TEXT_ONLY = "reads text only"


def tiny_cross_encoder_checkpoint(tmp_path_factory: pytest.TempPathFactory, seed: int = 0, **kwargs: Any) -> Path:
    """A tiny cross-encoder checkpoint, built once per process and (seed, options)."""
    from lychee_rerank.testing.tiny_cross_encoder import build

    name = "-".join(f"{k}-{v}" for k, v in sorted(kwargs.items())) or "default"
    return built_once(tmp_path_factory, f"tiny-cross-encoder-{seed}-{name}", lambda out: build(out, seed=seed, **kwargs))


def reference(model_dir: Path, **kwargs: Any) -> Any:
    """sentence-transformers' CrossEncoder on ``model_dir``, CPU, FP32, offline."""
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(model_dir), device="cpu", local_files_only=True, **kwargs)


@pytest.fixture(scope="session")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_cross_encoder_checkpoint(tmp_path_factory)


@pytest.fixture(scope="session")
def cross_encoder_reference(cross_encoder_dir: Path) -> Any:
    return reference(cross_encoder_dir)


@pytest.fixture(scope="session")
def cross_encoder_reranker(cross_encoder_dir: Path) -> Any:
    """The library's cross-encoder on the tiny checkpoint: the yardstick of every surface's test."""
    return library_reranker(cross_encoder_dir, FAMILY)
