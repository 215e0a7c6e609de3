"""Helpers shared by the benchmarks: deterministic inputs, timing, the result table."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
from PIL import Image


def noise_photo(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8), "RGB")


def timed(fn: Callable[[], Any], repeats: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeats`` runs (the machine is shared and noisy) and the last value."""
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - start)
    return best, value


def max_abs_diff(a: list[float], b: list[float]) -> float:
    """Largest difference between two score lists of the same pairs."""
    return max(abs(x - y) for x, y in zip(a, b))


def print_table(rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    width = {c: max(len(c), *(len(_fmt(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.rjust(width[c]) if i else c.ljust(width[c]) for i, c in enumerate(cols)))
    print("  ".join("-" * width[c] for c in cols))
    for r in rows:
        print("  ".join(_fmt(r[c]).rjust(width[c]) if i else _fmt(r[c]).ljust(width[c]) for i, c in enumerate(cols)))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.2e}" if (v != 0 and abs(v) < 1e-2) else f"{v:.2f}"
    return str(v)


def interleaved(runs: dict[str, tuple[int, Callable[[], Any]]]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Best time and last scores of each scorer (name: (repeats, run)), runs interleaved
    (a, b, c, a, b, c, ...): load on a shared machine drifts within a scenario, and each scorer
    should see the same drift. A run returns its scores, or (seconds, scores) when it times itself."""
    best = {name: float("inf") for name in runs}
    got: dict[str, list[float]] = {}
    for i in range(max(n for n, _ in runs.values())):
        for name, (n, fn) in runs.items():
            if i >= n:
                continue
            seconds, value = timed(fn)
            if isinstance(value, tuple):
                seconds, value = value
            best[name], got[name] = min(best[name], seconds), value
    return best, got
