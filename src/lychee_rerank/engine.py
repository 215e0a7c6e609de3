"""``LycheeReranker``: the one obvious entry point.

``rerank()`` normalises inputs (:mod:`.inputs`), asks the backend for scores
(:meth:`Backend.score_pairs`, for the model in :mod:`.backends.lychee`) and ranks them
(:mod:`.postprocess`). Every interface (CLI, HTTP, UI) calls this, never a backend directly.
"""

from __future__ import annotations

import inspect
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from typing import Any, Callable, Mapping, Sequence

from .backends.base import Backend, ProgressCallback
from .config import RerankerConfig
from .inputs import Content, ImageLimits, InputError, InputLike, to_content, to_query
from .postprocess import PostProcessOptions, rank
from .prompt import resolve_instruction
from .results import PairScore, RerankResult

logger = logging.getLogger("lychee_rerank")


DECODE_POOL_MIN_DOCS = 8


@lru_cache(maxsize=1)
def _decode_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="lychee-decode")


class ScoringError(RuntimeError):
    """Raised with ``raise_on_error=True`` when a document could not be scored."""


class LycheeReranker:
    """Multimodal reranker: ``rerank(query, documents)`` returns ranked :class:`RerankResult` records."""

    def __init__(
        self,
        backend: Backend,
        *,
        image_limits: ImageLimits | None = None,
        templates_file: str | Path | None = None,
        tie_epsilon: float = 0.01,
        scale: float = 1.0,
    ) -> None:
        self.backend = backend
        self.image_limits = image_limits or ImageLimits()
        self.templates_file = templates_file
        self.tie_epsilon = tie_epsilon
        self.scale = scale

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(
        cls, config: RerankerConfig, *, notice: Callable[[str], None] | None = None, **kwargs: Any
    ) -> "LycheeReranker":
        """Build the backend ``config`` names (:func:`lychee_rerank.backends.create`) and wrap it.

        Keyword arguments are routed by name (:meth:`route`): ``RerankerConfig`` fields change
        ``config``, the constructor's parameters go to it, the rest to the backend's factory.
        The image limits and templates file come from the config unless ``image_limits`` is given.
        """
        from . import backends

        changes, engine_kwargs, options = cls.route(kwargs)
        config = replace(config, **changes)
        engine_kwargs.setdefault("image_limits", ImageLimits(config.image_max_pixels, config.image_max_bytes))
        backend = backends.create(config, notice=notice, **options)
        return cls(backend, templates_file=config.templates_path, **engine_kwargs)

    @classmethod
    def route(cls, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(config fields, constructor arguments, backend options): the one routing rule.

        A name that is a :class:`RerankerConfig` field configures the reranker (so ``backend``
        and ``templates_file`` are the config's), else one of :meth:`__init__`'s parameters goes
        to the constructor, else it is an option of the backend's factory (e.g. ``cache_dir``).
        """
        fields = {f.name for f in dataclass_fields(RerankerConfig)}
        own = set(inspect.signature(cls.__init__).parameters) - {"self"}
        routed: tuple[dict[str, Any], dict[str, Any], dict[str, Any]] = ({}, {}, {})
        for name, value in kwargs.items():
            routed[0 if name in fields else 1 if name in own else 2][name] = value
        return routed

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str | Path,
        *,
        device: Any = "auto",
        dtype: Any = "auto",
        attn_implementation: str | None = "auto",
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        **kwargs: Any,
    ) -> "LycheeReranker":
        """Load a reranker checkpoint (hub id or local directory) of a known family (``lychee models``).

        Defaults pick BF16 (else FP16) and Flash-Attention-2 (else SDPA) on CUDA, FP32 and
        SDPA on CPU; the choice is on ``reranker.device``, ``.dtype``, ``.attn_implementation``.
        ``min_pixels``/``max_pixels`` bound each image's visual tokens (``None``: the family's
        default, e.g. 4 to 1280 tokens of 28x28 pixels for lychee-rerank-mm). The family is read
        from the checkpoint's config.json unless ``family=`` names one. Other keyword arguments
        are routed by :meth:`route`: :class:`~lychee_rerank.config.RerankerConfig` fields
        (``family``, ``scoring``, ``max_query_tokens``, ``adapter``, ``prefix_cache``,
        ``escape_special_tokens``, ...), the constructor's (``tie_epsilon``, ``scale``,
        ``image_limits``), or the backend's options. ``escape_special_tokens`` (default True)
        keeps special-token strings such as ``<|im_end|>`` in the query, documents and
        instruction as plain text, so no user text can write control tokens into the prompt;
        False tokenizes them as upstream does.
        """
        config = RerankerConfig(backend="lychee", model=str(model_name_or_path))
        return cls.from_config(
            config, device=device, dtype=dtype, attn_implementation=attn_implementation,
            min_pixels=min_pixels, max_pixels=max_pixels, **kwargs,
        )

    @classmethod
    def load(
        cls,
        backend: str = "auto",
        model: str | Path | None = None,
        *,
        notice: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> "LycheeReranker":
        """Pick a backend the way every interface does (``--backend auto|lychee|lite``).

        ``lychee`` loads ``model`` (or ``$LYCHEE_MODEL``). ``lite`` builds the offline backend
        from models that ship inside packages. ``auto`` takes the model when one is configured
        or found in the local hub cache, else the lite backend, and says so through ``notice``.
        Keyword arguments are routed by :meth:`route`.
        """
        config = RerankerConfig(backend=backend, model=str(model) if model else None)
        return cls.from_config(config, notice=notice, **kwargs)

    # ------------------------------------------------------------------ properties
    @property
    def info(self) -> dict[str, Any]:
        return self.backend.info()

    @property
    def device(self) -> str | None:
        return self.info.get("device")

    @property
    def dtype(self) -> str | None:
        return self.info.get("dtype")

    @property
    def attn_implementation(self) -> str | None:
        return self.info.get("attn_implementation")

    def __repr__(self) -> str:
        details = ", ".join(f"{k}={v}" for k, v in self.info.items())
        return f"LycheeReranker({details})"

    # ------------------------------------------------------------------ API
    def rerank(
        self,
        query: InputLike,
        documents: Sequence[InputLike],
        instruction: str | None = None,
        top_k: int | None = None,
        score_threshold: float | None = None,
        batch_size: int = 8,
        *,
        template: str | None = None,
        normalize: bool = False,
        scale: float | None = None,
        tie_epsilon: float | None = None,
        raise_on_error: bool = False,
        progress: ProgressCallback | None = None,
    ) -> list[RerankResult]:
        """Score every document against ``query`` and return records sorted best first.

        ``score_threshold`` is in the display scale (``scale=10`` for 0-10 scores). A document
        that cannot be read or scored gets score 0 and an ``error`` and comes last, unless
        ``raise_on_error=True``. An unusable query raises :class:`InputError`: nothing could
        be scored against it.
        """
        request = self._begin(
            query, documents, instruction, template=template, top_k=top_k, score_threshold=score_threshold,
            normalize=normalize, scale=scale, tie_epsilon=tie_epsilon, raise_on_error=raise_on_error,
        )
        self._score([request], batch_size, progress)
        return self._finish(request)

    def rerank_many(
        self, calls: Sequence[Mapping[str, Any]], batch_size: int = 8, progress: ProgressCallback | None = None
    ) -> list[list[RerankResult] | Exception]:
        """Several ``rerank`` calls scored together, sharing forward passes (server micro-batching).

        Each mapping holds ``rerank``'s keyword arguments (``query``, ``documents``, ...). Each
        call gets exactly its own results, the same as if it had run alone; a call that fails
        (an empty query, say) gets its exception in its slot, the others are unaffected.
        """
        requests: list[_Request | Exception] = []
        for call in calls:
            try:
                requests.append(self._begin(**call))
            except Exception as exc:  # noqa: BLE001 - reported in that call's slot
                requests.append(exc)
        self._score([r for r in requests if isinstance(r, _Request)], batch_size, progress)
        out: list[list[RerankResult] | Exception] = []
        for r in requests:
            if isinstance(r, Exception):
                out.append(r)
                continue
            try:
                out.append(self._finish(r))
            except Exception as exc:  # noqa: BLE001
                out.append(exc)
        return out

    def _begin(
        self, query: InputLike, documents: Sequence[InputLike], instruction: str | None = None, *,
        template: str | None = None, top_k: int | None = None, score_threshold: float | None = None,
        normalize: bool = False, scale: float | None = None, tie_epsilon: float | None = None,
        raise_on_error: bool = False,
    ) -> "_Request":
        """Validate and decode one call; nothing is scored yet."""
        options = PostProcessOptions(
            top_k=top_k,
            score_threshold=score_threshold,
            tie_epsilon=self.tie_epsilon if tie_epsilon is None else tie_epsilon,
            normalize=normalize,
            scale=self.scale if scale is None else scale,
        )
        request = _Request(
            query=self.to_query(query), documents=list(documents),
            instruction=resolve_instruction(instruction, template, self.templates_file),
            options=options, raise_on_error=raise_on_error,
        )
        request.scores = [PairScore() for _ in request.documents]
        for i, decoded in enumerate(self._decode_all(request.documents)):
            if isinstance(decoded, InputError):
                if raise_on_error:
                    raise decoded
                request.scores[i] = PairScore(error=str(decoded))
                request.contents.append(None)
            else:
                request.contents.append(decoded)
        return request

    def _score(self, requests: "list[_Request]", batch_size: int, progress: ProgressCallback | None) -> None:
        """The one place scores are asked for: :meth:`Backend.score_groups`."""
        if not requests:
            return
        groups = [(r.query, [r.contents[i] for i in r.valid], r.instruction) for r in requests]
        scored = self.backend.score_groups(groups, batch_size=batch_size, progress=progress)
        for request, scores in zip(requests, scored):
            for i, s in zip(request.valid, scores):
                request.scores[i] = s

    def _finish(self, request: "_Request") -> list[RerankResult]:
        if request.raise_on_error:
            for i, s in enumerate(request.scores):
                if s.error is not None:
                    raise ScoringError(f"document {i}: {s.error}")
        contents, docs = request.contents, request.documents
        return rank(
            request.scores,
            docs,
            request.options,
            sources=[c.describe() if c is not None else _describe_raw(d) for c, d in zip(contents, docs)],
            modalities=[c.modality if c is not None else None for c in contents],
        )

    def _decode_all(self, docs: list[Any]) -> list[Content | InputError]:
        """Decode documents, in parallel threads when there are many (PIL releases the GIL)."""

        def decode(item: tuple[int, Any]) -> Content | InputError:
            i, doc = item
            try:
                content = self.check_image(to_content(doc, limits=self.image_limits), f"document {i}")
            except InputError as exc:
                return exc
            if content.is_empty:
                return InputError(f"document {i} is empty: give text, an image, or both")
            return content

        if len(docs) < DECODE_POOL_MIN_DOCS:
            return [decode(item) for item in enumerate(docs)]
        return list(_decode_pool().map(decode, enumerate(docs)))

    def score(self, query: InputLike, document: InputLike, instruction: str | None = None, *, template: str | None = None) -> float:
        """Relevance of one pair in the reranker's display scale; raises if it cannot be scored."""
        results = self.rerank(query, [document], instruction=instruction, template=template, raise_on_error=True)
        return results[0].score

    def to_query(self, query: InputLike) -> Content:
        return self.check_image(to_query(query, limits=self.image_limits), "query")

    def check_image(self, content: Content, name: str) -> Content:
        """``content``, unless the backend cannot read its image's shape (:meth:`Backend.image_refusal`):
        then an :class:`InputError` naming ``name``, found when the input is read, not mid-batch."""
        size = content.image_size
        reason = self.backend.image_refusal(size) if size is not None else None
        if reason is not None:
            raise InputError(f"{name} image: {reason}")
        reason = self.backend.input_refusal(content, "query" if name == "query" else "document")
        if reason is not None:
            raise InputError(f"{name}: {reason}")
        return content


@dataclass
class _Request:
    """One rerank call between decoding and ranking."""

    query: Content
    documents: list[Any]
    instruction: str | None
    """``None``: the backend's family default (:attr:`Backend.default_instruction`)."""
    options: PostProcessOptions
    raise_on_error: bool = False
    contents: list[Content | None] = field(default_factory=list)
    scores: list[PairScore] = field(default_factory=list)

    @property
    def valid(self) -> list[int]:
        return [i for i, c in enumerate(self.contents) if c is not None]


def _describe_raw(obj: Any) -> str:
    """A short label for a document that was refused before it became a :class:`Content` (or was
    handed in as one and refused): its own description where it has one."""
    if isinstance(obj, Content):
        return obj.describe()
    if isinstance(obj, (str, Path)):
        text = str(obj)
        return text if len(text) <= 60 else text[:57] + "..."
    return f"<{type(obj).__name__}>"

