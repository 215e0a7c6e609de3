"""The tiny Qwen3-Reranker checkpoint, for every test folder (registered in tests/conftest.py).

``qwen3_reranker_dir`` (session scope): a tiny random checkpoint in the published layout of
``Qwen/Qwen3-Reranker-0.6B`` (``lychee_rerank.testing.tiny_qwen3_reranker``), built once per
process (~40 MB, ~15 s). ``qwen3_reranker_readme`` (session scope): the official README code
(``tests/official/qwen3_reranker_readme.py``, vendored unchanged) driven on it in FP32.
``qwen3_reranker_reranker`` (session scope): the library on it (FP32, CPU), every surface's yardstick.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.family_support import built_once, library_reranker

FAMILY = "qwen3_reranker"
#: Qwen3-Reranker's own default instruction (the README's): every surface uses it when none is given.
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


def tiny_qwen3_reranker_checkpoint(tmp_path_factory: pytest.TempPathFactory, seed: int = 0) -> Path:
    """The tiny Qwen3-Reranker checkpoint, built once per process and seed."""
    from lychee_rerank.testing.tiny_qwen3_reranker import build

    return built_once(tmp_path_factory, f"tiny-qwen3-reranker-{seed}", lambda out: build(out, seed=seed))


@pytest.fixture(scope="session")
def qwen3_reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen3-Reranker checkpoint in the published layout (~40 MB, seed 0)."""
    return tiny_qwen3_reranker_checkpoint(tmp_path_factory)


@pytest.fixture(scope="session")
def qwen3_reranker_readme(qwen3_reranker_dir: Path):
    """The README's scorer (vendored unchanged) on the tiny checkpoint, FP32, in-process."""
    from tests.official.run_qwen3_reranker import ReadmeReranker

    return ReadmeReranker(qwen3_reranker_dir)


@pytest.fixture(scope="session")
def qwen3_reranker_reranker(qwen3_reranker_dir: Path):
    """The library's Qwen3-Reranker on the tiny checkpoint: the yardstick of every surface's test."""
    return library_reranker(qwen3_reranker_dir, FAMILY)
