"""Rerank dialects other servers speak, so their clients work against ``lychee serve`` unchanged.

``/v1/rerank`` (Cohere / Jina / vLLM / infinity) lives in :mod:`lychee_rerank.serving.app`; this
module adds what the clients of the other popular rerank servers send:

- Hugging Face text-embeddings-inference (TEI): ``POST /rerank`` with ``texts`` (and no
  ``documents``) answers a bare array over all texts, best first (LlamaIndex, ``rerankers``,
  Haystack, Milvus, Dify use it);
- vLLM: ``POST /score`` and ``/v1/score`` (``text_1`` against ``text_2``);
- OpenAI-style ``GET /v1/models`` (and infinity's ``GET /models``), which clients probe first.

Every route reads its items through the same :class:`~lychee_rerank.serving.reading.RequestReader` and
scores through the same micro-batched path as ``/v1/rerank``, so a pair has one score whatever
dialect asked for it.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Awaitable, Callable, Literal, Optional, Sequence, Union

from fastapi import FastAPI
from pydantic import BaseModel, Discriminator, Field, Tag

from ..results import RerankResult
from .reading import Prepared
from .service import ApiError
from .schemas import ContentDocuments, MultimodalItem, RerankInput, RerankRequest, RerankResponse, TextPart, _Lenient

# --------------------------------------------------------------------------- shared helpers
_WORD = re.compile(r"\w+")


def lite_tokens(prepared: Prepared, index: int) -> int:
    """The documented count for backends without a tokenizer (lite): words (runs of ``\\w``)
    of the query and the document text, plus one per image of the pair."""
    doc = prepared.contents[index]
    count = len(_WORD.findall(prepared.query.text or "")) + int(prepared.query.has_image)
    if doc is not None:
        count += len(_WORD.findall(doc.text or "")) + int(doc.has_image)
    return count


def usage_tokens(results: Sequence[RerankResult], prepared: Prepared) -> int:
    """Prompt tokens over the scored pairs: the model's own count (image tokens included),
    or :func:`lite_tokens` when the backend has none. Failed documents count nothing."""
    return sum(r.tokens if r.tokens is not None else lite_tokens(prepared, r.index) for r in results if r.error is None)


def raw_score(result: RerankResult) -> float:
    """The unsquashed score: ``yes - no`` logit for the model backend; for backends without
    logits (lite), the logit of its 0-1 score, ``log(p / (1 - p))`` with p clipped to [1e-7, 1 - 1e-7] - the same quantity, since
    the model's p(yes) is ``sigmoid(yes - no)``. 0 for a failed document."""
    if result.error is not None:
        return 0.0
    if result.yes_logit is not None and result.no_logit is not None:
        return float(result.yes_logit - result.no_logit)
    p = min(max(result.raw_score, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def cut(results: list[RerankResult], top_n: Optional[int], threshold: Optional[float]) -> list[RerankResult]:
    """Threshold, then top_n, on the scored (already sorted) results; failures always stay, last.

    Applied after scoring everything so ``usage`` counts every pair the model read."""
    scored = [r for r in results if r.error is None]
    failed = [r for r in results if r.error is not None]
    if threshold is not None:
        scored = [r for r in scored if r.score >= threshold]
    if top_n is not None:
        scored = scored[:top_n]
    merged = scored + failed
    for position, r in enumerate(merged, start=1):
        r.rank = position
    return merged


@dataclass
class RouteOps:
    """What the dialect routes need from :func:`~lychee_rerank.serving.app.create_app`'s helpers."""

    require: Callable[[], Any]
    """The loaded reranker (or the 503 ``ApiError`` while it loads)."""
    resolve: Callable[[Any, Optional[str], Optional[str]], str]
    prepare: Callable[[Any, Any, Sequence[Any], float], Awaitable[Prepared]]
    rerank_prepared: Callable[..., Awaitable[list[RerankResult]]]
    rerank_v1: Callable[[RerankRequest], Awaitable[RerankResponse]]
    error: Callable[..., Exception]
    """``error(status, type, message)``: the server's JSON error."""
    responses: dict[Any, dict[str, Any]]
    max_documents: int
    """The server's per-request document limit (``/score`` counts pairs against it)."""
    max_queue: int
    """Requests admitted to the model at once; one ``/score`` request takes at most half of it."""
    created: int
    """Unix time the server started (``created`` of the model card)."""


# --------------------------------------------------------------------------- TEI /rerank
class TeiRerankRequest(_Lenient):
    """text-embeddings-inference's rerank request. Texts are always cut to the model's token
    limit (``truncate: false`` is accepted; lychee never refuses a long text)."""

    query: Annotated[str, Field(min_length=1)]
    texts: list[str] = Field(..., description="Candidate texts; the answer covers all of them.")
    raw_scores: bool = Field(False, description="Score is the raw logit (yes - no) instead of p(yes).")
    return_text: bool = Field(False, description="Echo each text in its result.")
    truncate: Optional[bool] = None
    truncation_direction: Optional[Literal["left", "right", "Left", "Right"]] = None
    instruction: Optional[Annotated[str, Field(min_length=1)]] = None
    template: Optional[str] = None

    model_config = {"extra": "ignore", "json_schema_extra": {"examples": [{"query": "What is Deep Learning?", "texts": ["Deep Learning is ...", "Cheese is ..."], "return_text": True}]}}


class TeiRank(BaseModel):
    index: int
    score: float = Field(..., description="p(yes), or the yes - no logit with raw_scores; 0 for a failed text.")
    text: Optional[str] = None
    error: Optional[str] = Field(None, description="Why this text could not be scored (it comes last).")


def _rerank_kind(value: Any) -> str:
    """TEI when ``texts`` is present and ``documents`` absent; Cohere-style otherwise."""
    if isinstance(value, dict) and "texts" in value and "documents" not in value:
        return "tei"
    return "rerank"


AnyRerankRequest = Annotated[
    Union[Annotated[TeiRerankRequest, Tag("tei")], Annotated[RerankRequest, Tag("rerank")]],
    Discriminator(_rerank_kind),
]


# --------------------------------------------------------------------------- vLLM /score
ScoreInput = Union[str, list[RerankInput], ContentDocuments]


class ScoreRequest(_Lenient):
    """vLLM's score request: ``text_1`` (one or N) against ``text_2`` (N)."""

    model: Optional[str] = None
    text_1: ScoreInput = Field(..., description="One query, or as many as text_2 (paired in order).")
    text_2: ScoreInput = Field(..., description="Documents: a string, a list, or {'content': [parts]} (one document per part).")
    instruction: Optional[Annotated[str, Field(min_length=1)]] = None
    template: Optional[str] = None

    model_config = {"extra": "ignore", "json_schema_extra": {"examples": [{"text_1": "What is the capital of France?", "text_2": ["Paris is the capital of France.", "Berlin is in Germany."]}]}}


class ScoreData(BaseModel):
    index: int
    object: Literal["score"] = "score"
    score: float = Field(..., description="p(yes); 0 for a pair that failed.")
    error: Optional[str] = None


class ScoreUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int
    completion_tokens: int = 0


class ScoreResponse(BaseModel):
    id: str
    object: Literal["list"] = "list"
    created: int
    model: str
    data: list[ScoreData] = Field(..., description="In input order.")
    usage: ScoreUsage


def _items(value: ScoreInput) -> list[Any]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, ContentDocuments):
        return [MultimodalItem(text=p.text) if isinstance(p, TextPart) else [p] for p in value.content]
    return list(value)


# --------------------------------------------------------------------------- /v1/models
class ModelCard(BaseModel):
    id: str = Field(..., description="The model as loaded: hub id or local directory.")
    object: Literal["model"] = "model"
    created: int = Field(..., description="When the server started (Unix seconds).")
    owned_by: str = "lychee-rerank"
    family: Optional[str] = Field(
        None, description="Checkpoint family (`lychee models` lists them, e.g. qwen3_vl); null for a backend without "
        "families (lite). An extension of OpenAI's shape: clients that do not know it ignore it.",
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# --------------------------------------------------------------------------- routes
def install(app: FastAPI, ops: RouteOps) -> None:
    """Add the TEI, vLLM score and model-listing routes to ``app``."""
    _install_tei(app, ops)
    _install_score(app, ops)
    _install_models(app, ops)


def _install_tei(app: FastAPI, ops: RouteOps) -> None:
    async def tei(body: TeiRerankRequest) -> list[TeiRank]:
        t0 = time.perf_counter()
        rr = ops.require()
        instruction = ops.resolve(rr, body.instruction, body.template)
        prepared = await ops.prepare(rr, body.query, body.texts, t0)
        results = await ops.rerank_prepared("/rerank", rr, prepared, instruction, t0)
        return [
            TeiRank(
                index=r.index,
                score=raw_score(r) if body.raw_scores else r.score,
                text=body.texts[r.index] if body.return_text else None,
                error=r.error,
            )
            for r in results
        ]

    @app.post(
        "/rerank", response_model=Union[list[TeiRank], RerankResponse], response_model_exclude_none=True,
        responses=ops.responses, operation_id="rerank_alias", tags=["rerank"],
        summary="Rerank: TEI's shape (texts) or /v1/rerank's (documents)",
    )
    async def rerank_any(body: AnyRerankRequest) -> Any:
        """With ``texts`` and no ``documents``: text-embeddings-inference's request, answered with a
        bare array over all texts, best first. Otherwise the same as ``/v1/rerank``."""
        if isinstance(body, TeiRerankRequest):
            return await tei(body)
        return await ops.rerank_v1(body)


def _score_groups(queries: list[Any], docs: list[Any], ops: RouteOps) -> list[tuple[Any, list[int]]]:
    """(query, document indices) per scoring call: one query against all, or pairs grouped by query."""
    if len(docs) > ops.max_documents:
        raise ops.error(
            413, "limit_exceeded", f"{len(docs)} pairs, over the limit of {ops.max_documents} (max_documents)",
            limit="max_documents", value=len(docs), max=ops.max_documents,
        )
    if len(queries) == 1:
        return [(queries[0], list(range(len(docs))))]
    if len(queries) != len(docs):
        raise ops.error(
            422, "invalid_request",
            f"text_1 has {len(queries)} items and text_2 {len(docs)}: give one text_1, or as many as text_2",
        )
    # Pairs that share a query are one call (one shared prefix), as vLLM users often send.
    by_query: dict[str, tuple[Any, list[int]]] = {}
    for i, q in enumerate(queries):
        key = q if isinstance(q, str) else repr(q)
        by_query.setdefault(key, (q, []))[1].append(i)
    return list(by_query.values())


def _is_query_input_error(exc: ApiError) -> bool:
    """An error of the query's own input (empty, or its image over a limit), not of the request."""
    return exc.type == "invalid_query" or exc.extra.get("limit") in ("max_image_bytes", "max_image_pixels")


def _install_score(app: FastAPI, ops: RouteOps) -> None:
    async def score(body: ScoreRequest) -> ScoreResponse:
        """vLLM's score API: one query against N documents, or N pairs; answers in input order."""
        t0 = time.perf_counter()
        rr = ops.require()
        instruction = ops.resolve(rr, body.instruction, body.template)
        queries, docs = _items(body.text_1), _items(body.text_2)
        if not queries or not docs:
            raise ops.error(422, "invalid_request", "text_1 and text_2 must each hold at least one item")
        groups = _score_groups(queries, docs, ops)

        # A few calls at a time: they share forward passes through the server's micro-batching,
        # without one request filling the queue (max_queue) that other clients share.
        gate = asyncio.Semaphore(max(1, min(4, ops.max_queue // 2)))

        pairs = len(queries) > 1

        async def run(query: Any, indices: list[int]) -> tuple[list[int], list[RerankResult], int]:
            async with gate:
                try:
                    prepared = await ops.prepare(rr, query, [docs[i] for i in indices], t0)
                except ApiError as exc:
                    # In pairs mode a bad text_1 (empty, or its image over a limit) is those
                    # pairs' error: the other pairs are still scored, as a bad text_2 would be.
                    if not (pairs and _is_query_input_error(exc)):
                        raise
                    failed = [RerankResult(index=k, score=0.0, rank=0, document=None, error=exc.message) for k in range(len(indices))]
                    return indices, failed, 0
                results = await ops.rerank_prepared("/score", rr, prepared, instruction, t0)
                return indices, results, usage_tokens(results, prepared)

        data: dict[int, ScoreData] = {}
        tokens = 0
        for indices, results, used in await asyncio.gather(*(run(q, ix) for q, ix in groups)):
            tokens += used
            for r in results:
                data[indices[r.index]] = ScoreData(index=indices[r.index], score=r.score, error=r.error)
        return ScoreResponse(
            id=f"score-{uuid.uuid4().hex}", created=int(time.time()), model=str(rr.info.get("model")),
            data=[data[i] for i in range(len(docs))], usage=ScoreUsage(prompt_tokens=tokens, total_tokens=tokens),
        )

    for path, name in (("/score", "score"), ("/v1/score", "score_v1")):
        app.add_api_route(
            path, score, methods=["POST"], response_model=ScoreResponse, response_model_exclude_none=True,
            responses=ops.responses, operation_id=name, tags=["rerank"],
            summary="Score pairs (vLLM's score API)" if path == "/score" else "Score pairs (alias of /score)",
        )


def _install_models(app: FastAPI, ops: RouteOps) -> None:
    async def models() -> ModelList:
        """The one model this server answers with (OpenAI's shape); clients probe it first."""
        rr = ops.require()
        info = rr.info
        family = info.get("family")
        return ModelList(data=[ModelCard(id=str(info.get("model")), created=ops.created, family=str(family) if family else None)])

    for path, name in (("/v1/models", "models"), ("/models", "models_alias")):
        app.add_api_route(path, models, methods=["GET"], response_model=ModelList, operation_id=name, tags=["service"],
                          summary="List the served model")
