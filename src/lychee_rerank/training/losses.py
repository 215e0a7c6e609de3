"""Losses and held-out metrics as pure functions over the last position's logits.

The score users see is ``softmax([no, yes])[yes]``; ``pointwise_loss(kind="yesno")`` is
exactly the log-loss of that score. ``kind="vocab"`` is the plain SFT objective over the whole
vocabulary. ``listwise_loss`` ranks each positive above the hard negatives trained next to it.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F


def yes_no(logits: torch.Tensor, yes_id: int, no_id: int) -> torch.Tensor:
    """``[batch, 2]`` logits of ``no`` and ``yes`` (in that order: class 1 is relevant)."""
    return logits[:, [no_id, yes_id]]


def pointwise_loss(
    logits: torch.Tensor, labels: torch.Tensor, yes_id: int, no_id: int, kind: Literal["yesno", "vocab"] = "yesno"
) -> torch.Tensor:
    """Mean cross-entropy of each pair's label: over ``[no, yes]`` or over the whole vocabulary."""
    if kind == "vocab":
        return F.cross_entropy(logits, torch.where(labels.bool(), yes_id, no_id))
    return F.cross_entropy(yes_no(logits, yes_id, no_id), labels)


def listwise_loss(two: torch.Tensor, units: Sequence[tuple[int, bool]]) -> torch.Tensor | None:
    """Softmax cross-entropy of the positive among its unit's yes-no margins.

    ``two`` holds ``[no, yes]`` logits of consecutive units; ``units`` gives each unit's size
    and whether it leads with a positive. Units of one pair, or without a positive, add
    nothing; ``None`` when no unit qualifies.
    """
    margins = two[:, 1] - two[:, 0]
    terms, start = [], 0
    for size, positive_first in units:
        if size > 1 and positive_first:
            terms.append(-F.log_softmax(margins[start : start + size], dim=0)[0])
        start += size
    return torch.stack(terms).mean() if terms else None


def ranking_metrics(
    scores: Sequence[float], labels: Sequence[bool], queries: Sequence[int]
) -> tuple[float, float, int]:
    """(accuracy at 0.5, MRR, number of queries with a relevant document).

    Kept here rather than shared with :mod:`lychee_rerank.jobs.eval` on purpose: training only needs a
    binary-label MRR, and the evaluation command can evolve without changing what a
    checkpoint's history means.
    """
    if not scores:
        return float("nan"), float("nan"), 0
    accuracy = sum((s >= 0.5) == bool(y) for s, y in zip(scores, labels)) / len(scores)
    by_query: dict[int, list[tuple[float, bool]]] = {}
    for s, y, q in zip(scores, labels, queries):
        by_query.setdefault(q, []).append((s, bool(y)))
    rr = []
    for items in by_query.values():
        positives = [s for s, y in items if y]
        if not positives:
            continue
        best = max(positives)
        # Pessimistic ties: every negative scoring >= the best positive ranks above it.
        rank = 1 + sum(1 for s, y in items if not y and s >= best)
        rr.append(1.0 / rank)
    mrr = sum(rr) / len(rr) if rr else float("nan")
    return accuracy, mrr, len(rr)
