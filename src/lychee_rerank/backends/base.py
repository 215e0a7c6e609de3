"""The interface every scoring backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from typing import Any, Callable, Protocol, Sequence

from ..inputs import Content
from ..results import PairScore

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each batch (CLI progress bars, UI 'Analysing 3/50')."""


class TrainingView(Protocol):
    """What fine-tuning may use of a backend, and nothing else (no private names).

    Training must see exactly the token ids, padding and positions scoring sees: ``pair``
    prepares one (query, document) as scoring does, ``batch_logits`` runs them with autograd
    left to the caller, ``image_features`` runs the vision tower uncached.
    """

    model: Any
    """The transformers model scoring goes through (LoRA layers are injected into it)."""
    yes_id: int
    no_id: int
    vision_cache: Any
    """Bounded cache of vision-tower outputs (``get``/``put``/``clear``)."""
    stats: Any
    """The backend's counters (``vision_cache_hits`` counts reuse of cached features)."""

    @property
    def device(self) -> Any: ...

    @property
    def model_name(self) -> str: ...

    def pair(self, index: int, query: Content, document: Content, instruction: str) -> Any:
        """One pair ready for :meth:`batch_logits` (texts cut to the token limits as scoring cuts them)."""

    def image_features(self, images: Sequence[Any]) -> list[Any]: ...

    def batch_logits(self, pairs: Sequence[Any], features: Sequence[Any]) -> Any: ...


class Backend(ABC):
    """Scores (query, document) pairs; everything else (inputs, ranking) is shared.

    What callers may use: :meth:`score_pairs`, :meth:`score_groups`, :meth:`info`,
    :attr:`stats`, :meth:`render_prompt` and :meth:`training_view`.
    """

    name: str = "base"
    _stats: Counter[str] | None = None

    @property
    def stats(self) -> Counter[str]:
        """Counters of how scoring went (batches, cache hits, OOM back-offs): benchmarks and tests read them."""
        if self._stats is None:
            self._stats = Counter()
        return self._stats

    @abstractmethod
    def score_pairs(
        self,
        query: Content,
        documents: Sequence[Content],
        *,
        instruction: str | None,
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

    def image_refusal(self, size: tuple[int, int]) -> str | None:
        """Why this backend cannot read an image of ``size`` (width, height), or ``None``.

        Asked when a query or document is read, before anything is scored, so a shape the
        model family cannot take (an extreme aspect ratio, say) is that input's own
        error: a refused query fails its request (HTTP 422), a refused document only itself.
        """
        return None

    def input_refusal(self, content: Content, side: str) -> str | None:
        """Why this backend cannot read what ``content`` holds on ``side`` (``"query"`` or
        ``"document"``), or ``None``: for a model that reads some modalities on one side only (say,
        text queries and image documents). Asked beside :meth:`image_refusal`, when the input is read."""
        return None

    @property
    def prompt_spec(self) -> Any:
        """The :class:`~lychee_rerank.prompt.PromptSpec` this backend's prompts are built from
        (each model family declares its own; lychee-rerank-mm's for backends without one)."""
        from ..prompt import PromptSpec

        return PromptSpec()

    @property
    def default_instruction(self) -> str:
        """The instruction used when a call gives none (each model family has its own)."""
        return self.prompt_spec.default_instruction

    def render_prompt(self, query: Content, document: Content, instruction: str | None) -> str | None:
        """The text the model reads for one pair, where the backend has one (``None`` otherwise)."""
        return None

    def prompt_messages(self, query: Content, document: Content, instruction: str) -> list[dict[str, Any]] | None:
        """The chat messages of one pair before templating (``/v1/analyze``), ``None`` where the
        model reads no chat. Default: :attr:`prompt_spec`'s messages (a backend without a chat
        template, e.g. lite, shows these as its plain rendering)."""
        from ..prompt import build_messages

        return build_messages(query, document, instruction, spec=self.prompt_spec).messages

    def training_view(self) -> TrainingView:
        """The part of the backend fine-tuning uses; backends that cannot be trained refuse."""
        raise ValueError(f"fine-tuning needs the model backend, got {self.name!r}")
