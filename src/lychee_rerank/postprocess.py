"""Turn per-document scores into the ranking the user asked for (seed 002/003 rules).

Order of operations, each step documented because users set thresholds against it:
1. optional min-max normalisation over the successfully scored documents of this call;
2. scaling to the display scale (1 for 0-1, 10 for 0-10);
3. stable descending sort (equal scores keep input order);
4. ``score_threshold`` (in the display scale) and then ``top_k``;
5. near-tie flags between neighbours whose 0-1 scores differ by less than ``tie_epsilon``;
6. documents that failed are appended last with score 0, whatever the threshold or top_k,
   so an error is never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .results import PairScore, RerankResult


@dataclass(frozen=True)
class PostProcessOptions:
    top_k: int | None = None
    score_threshold: float | None = None
    tie_epsilon: float = 0.01
    normalize: bool = False
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.top_k is not None and self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if self.scale not in (1.0, 10.0):
            raise ValueError(f"scale must be 1 (0-1 scores) or 10 (0-10 scores), got {self.scale}")
        if self.tie_epsilon < 0:
            raise ValueError(f"tie_epsilon must be >= 0, got {self.tie_epsilon}")


def rank(
    scores: Sequence[PairScore],
    documents: Sequence[Any],
    options: PostProcessOptions,
    sources: Sequence[str | None] | None = None,
    modalities: Sequence[str | None] | None = None,
) -> list[RerankResult]:
    """Apply the rules above; ``scores[i]`` belongs to ``documents[i]``."""
    ok = [i for i, s in enumerate(scores) if s.error is None]
    failed = [i for i, s in enumerate(scores) if s.error is not None]

    values = {i: scores[i].score for i in ok}
    if options.normalize and ok:
        lo, hi = min(values.values()), max(values.values())
        span = hi - lo
        values = {i: (v - lo) / span if span > 0 else 1.0 for i, v in values.items()}

    def record(i: int, display: float) -> RerankResult:
        s = scores[i]
        return RerankResult(
            index=i,
            score=display,
            rank=0,
            document=documents[i],
            yes_logit=s.yes_logit,
            no_logit=s.no_logit,
            error=s.error,
            truncated=s.truncated,
            raw_score=s.score,
            raw_output=s.raw_output,
            source=sources[i] if sources else None,
            modality=modalities[i] if modalities else None,
            evidence=s.evidence,
            tokens=s.tokens,
        )

    # sorted() is stable: equal scores keep input order.
    ranked = [record(i, values[i] * options.scale) for i in sorted(ok, key=lambda i: -values[i])]
    if options.score_threshold is not None:
        ranked = [r for r in ranked if r.score >= options.score_threshold]
    if options.top_k is not None:
        ranked = ranked[: options.top_k]
    for a, b in zip(ranked, ranked[1:]):
        if abs(a.raw_score - b.raw_score) < options.tie_epsilon:
            a.tie = b.tie = True
    ranked.extend(record(i, 0.0) for i in failed)
    for position, r in enumerate(ranked, start=1):
        r.rank = position
    return ranked
