"""The interface every scoring backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

from ..inputs import Content
from ..results import PairScore

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each batch (CLI progress bars, UI 'Analysing 3/50')."""


class Backend(ABC):
    """Scores (query, document) pairs; everything else (inputs, ranking) is shared."""

    name: str = "base"

    @abstractmethod
    def score_pairs(
        self,
        query: Content,
        documents: Sequence[Content],
        *,
        instruction: str,
        batch_size: int = 8,
        progress: ProgressCallback | None = None,
    ) -> list[PairScore]:
        """Return one :class:`PairScore` per document, in input order.

        A document that cannot be scored gets a ``PairScore`` with ``error`` set; it never
        makes the call fail.
        """

    def score_groups(
        self,
        groups: Sequence[tuple[Content, Sequence[Content], str]],
        *,
        batch_size: int = 8,
        progress: ProgressCallback | None = None,
    ) -> list[list[PairScore]]:
        """Score several (query, documents, instruction) groups; backends that can share
        forward passes across groups override this (server micro-batching)."""
        return [
            self.score_pairs(q, docs, instruction=ins, batch_size=batch_size, progress=progress) if docs else []
            for q, docs, ins in groups
        ]

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """Backend, model, device, dtype, attention implementation: for logs, /health, UI."""
