"""Pick ``score_threshold`` values from labelled data instead of guessing them.

From (score, relevant) pairs this computes the precision-recall curve and three operating
points, each from the data:

* **strict**: the smallest threshold whose precision is >= 0.95 (the most results you can
  keep while 19 in 20 of them are relevant); absent when precision never gets there;
* **balanced**: the threshold with the best F1 (on equal F1 the larger threshold, which keeps
  fewer results for the same quality);
* **explore**: the largest threshold whose recall is >= 0.9 (the most selective cut that
  still finds 9 in 10 of the relevant documents).

A threshold keeps documents with ``score >= threshold``, exactly as
:func:`lychee_rerank.postprocess.rank` applies ``score_threshold``, and candidate thresholds
are the distinct scores themselves, so every row of the table is a cut that really happens
on this data. Scores are on the 0-1 scale (divide 0-10 display scores by 10 first).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

STRICT_PRECISION = 0.95
EXPLORE_RECALL = 0.9


@dataclass(frozen=True)
class PRPoint:
    """The cut ``score >= threshold`` and what it gives."""

    threshold: float
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    kept: int


@dataclass(frozen=True)
class PRCurve:
    """One point per distinct score, highest threshold first."""

    points: list[PRPoint]
    n_positive: int
    n_negative: int

    @property
    def thresholds(self) -> list[float]:
        return [p.threshold for p in self.points]

    @property
    def precision(self) -> list[float]:
        return [p.precision for p in self.points]

    @property
    def recall(self) -> list[float]:
        return [p.recall for p in self.points]


@dataclass(frozen=True)
class ThresholdRow:
    name: str
    rule: str
    threshold: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    kept: int | None
    """How many of the labelled examples the cut keeps."""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _relevant(label: Any) -> bool:
    if isinstance(label, bool):
        return label
    value = float(label)
    if math.isnan(value) or value < 0:
        raise ValueError(f"labels must be booleans or numbers >= 0 (graded: > 0 is relevant), got {label!r}")
    return value > 0


def pr_curve(scores: Sequence[float], labels: Sequence[Any]) -> PRCurve:
    """Precision and recall at every distinct score, used as a ``>=`` threshold.

    With no relevant example, recall is undefined: it is NaN, precision is 0 and F1 is 0.
    """
    if len(scores) != len(labels):
        raise ValueError(f"{len(scores)} scores but {len(labels)} labels")
    if not scores:
        raise ValueError("no scores: a threshold needs labelled examples")
    values = [float(s) for s in scores]
    if any(math.isnan(s) for s in values):
        raise ValueError("scores contain NaN")
    relevant = [_relevant(y) for y in labels]
    n_pos = sum(relevant)
    n_neg = len(relevant) - n_pos
    order = sorted(range(len(values)), key=lambda i: -values[i])
    points: list[PRPoint] = []
    tp = fp = 0
    for rank, i in enumerate(order):
        tp += relevant[i]
        fp += not relevant[i]
        # Emit once per distinct score, after every example tied at that score is counted.
        if rank + 1 < len(order) and values[order[rank + 1]] == values[i]:
            continue
        precision = tp / (tp + fp)
        recall = tp / n_pos if n_pos else math.nan
        f1 = 2 * precision * recall / (precision + recall) if n_pos and (precision + recall) > 0 else 0.0
        points.append(PRPoint(values[i], precision, recall, f1, tp, fp, tp + fp))
    return PRCurve(points=points, n_positive=n_pos, n_negative=n_neg)


def best_f1(curve: PRCurve) -> PRPoint | None:
    """The point with the highest F1; on ties the larger threshold. ``None`` without positives."""
    if not curve.n_positive:
        return None
    best = max(curve.points, key=lambda p: (p.f1, p.threshold))
    return best if best.f1 > 0 else None


def strict_point(curve: PRCurve, min_precision: float = STRICT_PRECISION) -> PRPoint | None:
    """Smallest threshold with precision >= ``min_precision``."""
    if not curve.n_positive:
        return None
    ok = [p for p in curve.points if p.precision >= min_precision]
    return min(ok, key=lambda p: p.threshold) if ok else None


def explore_point(curve: PRCurve, min_recall: float = EXPLORE_RECALL) -> PRPoint | None:
    """Largest threshold with recall >= ``min_recall``."""
    if not curve.n_positive:
        return None
    ok = [p for p in curve.points if p.recall >= min_recall]
    return max(ok, key=lambda p: p.threshold) if ok else None


def threshold_table(
    scores: Sequence[float],
    labels: Sequence[Any],
    *,
    strict_precision: float = STRICT_PRECISION,
    explore_recall: float = EXPLORE_RECALL,
) -> list[ThresholdRow]:
    """The strict / balanced / explore rows for these labelled scores."""
    curve = pr_curve(scores, labels)
    specs = [
        ("strict", f"smallest threshold with precision >= {strict_precision:g}", strict_point(curve, strict_precision)),
        ("balanced", "best F1", best_f1(curve)),
        ("explore", f"largest threshold with recall >= {explore_recall:g}", explore_point(curve, explore_recall)),
    ]
    common = ""
    if not curve.n_positive:
        common = "no relevant examples: recall is undefined, nothing to calibrate"
    elif len(curve.points) == 1:
        common = "all scores are equal: no threshold separates relevant from irrelevant"
    elif not curve.n_negative:
        common = "no irrelevant examples: every threshold has precision 1"
    rows = []
    for name, rule, point in specs:
        if point is None:
            note = common or (
                f"precision never reaches {strict_precision:g}" if name == "strict" else "F1 is 0 at every threshold"
            )
            rows.append(ThresholdRow(name, rule, None, None, None, None, None, note))
        else:
            rows.append(ThresholdRow(name, rule, point.threshold, point.precision, point.recall, point.f1, point.kept, common))
    return rows


def write_pr_curve(
    path: str | Path,
    scores: Sequence[float],
    labels: Sequence[Any],
    *,
    title: str | None = None,
    strict_precision: float = STRICT_PRECISION,
    explore_recall: float = EXPLORE_RECALL,
) -> list[ThresholdRow]:
    """Draw the precision-recall curve with the three operating points to a PNG; return the table.

    Uses matplotlib's Agg canvas directly (no pyplot, no global backend switch), so it works
    headless and in threads.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curve = pr_curve(scores, labels)
    rows = threshold_table(scores, labels, strict_precision=strict_precision, explore_recall=explore_recall)
    fig = Figure(figsize=(6, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if curve.n_positive:
        # One point per threshold, joined in threshold order (no interpolation between cuts).
        ax.plot(curve.recall, curve.precision, "-o", color="#1f77b4", markersize=3, linewidth=1.2,
                label="precision-recall (one point per threshold)")
        base = curve.n_positive / (curve.n_positive + curve.n_negative)
        ax.axhline(base, linestyle="--", color="grey", linewidth=1, label=f"share relevant ({base:.2f})")
        # Distinct shapes and sizes: two operating points often coincide.
        styles = {"strict": ("o", 12, "#d62728"), "balanced": ("s", 9, "#2ca02c"), "explore": ("D", 6, "#ff7f0e")}
        for row in rows:
            if row.threshold is not None:
                marker, size, colour = styles[row.name]
                ax.plot([row.recall], [row.precision], marker, markersize=size, color=colour, linestyle="none",
                        label=f"{row.name}: t={row.threshold:.3f} (P={row.precision:.2f}, R={row.recall:.2f})")
    else:
        ax.text(0.5, 0.5, "no relevant examples", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title or f"{curve.n_positive} relevant / {curve.n_negative} irrelevant")
    ax.grid(alpha=0.3)
    if curve.n_positive:
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return rows


__all__ = [
    "PRCurve", "PRPoint", "ThresholdRow", "best_f1", "explore_point", "pr_curve", "strict_point",
    "threshold_table", "write_pr_curve",
]
