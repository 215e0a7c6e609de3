"""Shared by the per-surface Qwen3-VL-Reranker tests (``tests/*/test_qwen3_vl.py``).

Each surface (CLI, HTTP, UI, batch, Ray Serve, fine-tuning) runs the tiny Qwen3-VL-Reranker
checkpoint (``qwen3_vl_dir``, tests/official/harness.py, built once per session) and must give the
library's scores. The yardstick is a library reranker (FP32 on the CPU; ~2 s to load, and loaded
once in each module that imports the fixture); the pictures are drawn with PIL and saved as PNG.
Import the fixtures into a test module as ``ray_support.ray_local`` is::

    from ..qwen3_vl_support import qwen3_vl_pngs, qwen3_vl_reranker  # noqa: F401 - shared fixtures
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.family_support import library_reranker

FAMILY = "qwen3_vl"
#: Qwen3-VL-Reranker's own default instruction (the official scorer's), which every surface uses
#: when none is given: not lychee's "Given a web search query ...".
DEFAULT_INSTRUCTION = "Given a search query, retrieve relevant candidates that answer the query."
QUERY = "a red circle on a blue background"
TEXTS = ["a red circle on a blue background", "green triangles on white paper", "一只黑猫趴在窗台上", "stock market report"]


def draw_png(path: Path, size: tuple[int, int], seed: int) -> Path:
    """A deterministic picture (a gradient with filled shapes), saved as PNG."""
    rng = np.random.default_rng(seed)
    w, h = size
    x = np.linspace(0, 1, w)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    base = 255 * (0.5 + 0.5 * np.sin(5 * x * rng.uniform(1, 3) + 3 * y * rng.uniform(1, 3) + rng.uniform(0, 6, 3)))
    image = Image.fromarray(base.astype("uint8"), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        fill = tuple(int(v) for v in rng.integers(0, 255, 3))
        draw.ellipse((x0, y0, x0 + int(rng.integers(8, w // 2)), y0 + int(rng.integers(8, h // 2))), fill=fill)
    draw.rectangle((w // 4, h // 4, w // 2, h // 2), outline=(255, 255, 255), width=2)
    image.save(path, format="PNG")
    return path


@pytest.fixture(scope="session")
def qwen3_vl_pngs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three PNGs of different sizes and aspect ratios (one under the family's minimum pixels)."""
    folder = tmp_path_factory.mktemp("qwen3-vl-pngs")
    return [draw_png(folder / f"q3_{i}.png", size, seed=30 + i) for i, size in enumerate([(96, 64), (64, 128), (48, 40)])]


@pytest.fixture(scope="session")
def qwen3_vl_reranker(qwen3_vl_dir: Path):
    """The library's Qwen3-VL-Reranker on the tiny checkpoint: the yardstick of every surface."""
    return library_reranker(qwen3_vl_dir, FAMILY)


def library_scores(reranker, query, documents, **kwargs) -> dict[int, float]:
    """{document index: score} of ``reranker.rerank``; every document must have been scored."""
    results = reranker.rerank(query, documents, **kwargs)
    assert all(r.error is None for r in results), [r.error for r in results]
    return {r.index: r.score for r in results}


def spread(scores) -> float:
    """Max - min of the scores: the pairs must differ, or a lost input (an image read as nothing)
    would go unseen."""
    values = list(scores.values()) if isinstance(scores, dict) else list(scores)
    return max(values) - min(values)
