"""The tiny jina-reranker-m0 checkpoint and its reference scorer, for every test folder (registered in tests/conftest.py).

``jina_m0_dir`` (session scope): a tiny random checkpoint in the published layout of
``jinaai/jina-reranker-m0`` (``lychee_rerank.testing.tiny_jina_m0``: Qwen2-VL weights under the 4.x
key names, the ``score.0``/``score.2`` MLP, ``architectures: ["JinaVLForRanking"]``, the real Qwen2
vocabulary), built once per process (~40 MB, ~20 s). ``jina_m0_reference`` (session scope): the
plain one-pair scorer written from the published modelling code (``tests/official/jina_m0_reference.py``),
FP32 on CPU. ``jina_m0_reranker`` (session scope): the library on it (FP32, CPU), every surface's
yardstick. ``jina_m0_pngs`` (session scope): three small PNG files.

Import the fixtures into a test module as ``ray_support.ray_local`` is::

    from ..jina_m0_support import jina_m0_pngs, jina_m0_reranker  # noqa: F401 - shared fixtures
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.family_support import built_once, library_reranker
from tests.qwen3_vl_support import draw_png, library_scores, spread  # noqa: F401 - library_scores, spread: for the jina-m0 tests

FAMILY = "jina_m0"
LICENCE = "CC-BY-NC-4.0 (non-commercial)"
QUERY = "a red circle on a blue background"
TEXTS = ["a red circle on a blue background", "green triangles on white paper", "一只黑猫趴在窗台上", "stock market report"]


def tiny_jina_m0_checkpoint(tmp_path_factory: pytest.TempPathFactory, seed: int = 0) -> Path:
    """The tiny jina-reranker-m0 checkpoint, built once per process and seed."""
    from lychee_rerank.testing.tiny_jina_m0 import build

    return built_once(tmp_path_factory, f"tiny-jina-m0-{seed}", lambda out: build(out, seed=seed))


@pytest.fixture(scope="session")
def jina_m0_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random jina-reranker-m0 checkpoint in the published layout (seed 0)."""
    return tiny_jina_m0_checkpoint(tmp_path_factory)


@pytest.fixture(scope="session")
def jina_m0_reference(jina_m0_dir: Path):
    """The plain scorer written from the published modelling code, FP32, one pair per call."""
    from tests.official.jina_m0_reference import JinaM0Reference

    return JinaM0Reference(jina_m0_dir)


@pytest.fixture(scope="session")
def jina_m0_reranker(jina_m0_dir: Path):
    """The library's jina-reranker-m0 on the tiny checkpoint: the yardstick of every surface's test."""
    return library_reranker(jina_m0_dir, FAMILY)


@pytest.fixture(scope="session")
def jina_m0_pngs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three PNGs of different sizes and aspect ratios (one under the family's minimum pixels)."""
    folder = tmp_path_factory.mktemp("jina-m0-pngs")
    return [draw_png(folder / f"jm0_{i}.png", size, seed=50 + i) for i, size in enumerate([(96, 64), (64, 128), (40, 48)])]

