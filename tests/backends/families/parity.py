"""What the families' parity tests (tests/backends/families/test_<family>.py) share: the English and
Chinese documents, the engine's scores in document order, and the check that the reference's
scores spread (an engine returning a constant would otherwise pass)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

DOCS_EN = [
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies towards each other. It gives weight to physical objects "
    "and is responsible for the movement of planets around the sun.",
    "a black cat sleeping on a sofa",
    "the quick brown fox jumps over the lazy dog",
    "Paris is the capital and largest city of France.",
    "coffee cup on a wooden table, 2 3 4",
    "北京是中华人民共和国的首都。",
    "stock market report for the second quarter",
    "photosynthesis converts light energy into chemical energy",
]
DOCS_ZH = ["北京是中国的首都。", "一只黑猫趴在窗台上，旁边有一杯咖啡。", "上海是中国最大的城市之一", "The capital of China is Beijing.",
           "万有引力是物体之间相互吸引的力", "今天的天气很好"]


def noise_png(path: Path) -> Path:
    """A 64x48 PNG of random pixels (seed 0) at ``path``: the picture a text family must refuse."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), "RGB").save(path)
    return path


def engine_scores(reranker: Any, query: Any, docs: list, batch_size: int = 8, **kwargs: Any) -> list[float]:
    """The engine's scores of ``docs`` in document order; every document must have been scored."""
    results = reranker.rerank(query, docs, batch_size=batch_size, **kwargs)
    assert all(r.error is None for r in results), [r.error for r in results]
    return [r.score for r in sorted(results, key=lambda r: r.index)]


def assert_spread(calls: list[list[float]], low: float = 0.4, high: float = 0.6) -> None:
    """The reference's scores over all calls spread (std > 0.05, some under ``low``, some over ``high``)."""
    flat = [s for call in calls for s in call]
    assert np.std(flat) > 0.05 and min(flat) < low and max(flat) > high, flat  # an engine returning a constant fails
