"""``lychee serve``: the HTTP service (FastAPI) around :class:`~lychee_rerank.LycheeReranker`.

Routes: ``POST /v1/rerank`` (and ``/rerank``, ``/v2/rerank``) in the Cohere v2 / Jina / vLLM
shape, ``POST /api/rerank`` in the shape of the Docker/Streamlit article, ``POST /v1/analyze``
for one pair, ``GET /health``, ``GET /metrics``; the contract is in :mod:`lychee_rerank.serving.schemas`.

Every request image becomes bytes in :mod:`lychee_rerank.serving.sources` (which enforces what the
operator allowed), then a :class:`~lychee_rerank.inputs.Content` through the same
:func:`~lychee_rerank.inputs.to_content` the library uses, so a pair scores the same over HTTP
as in Python. All model calls run on one thread (:mod:`lychee_rerank.serving.worker`).
"""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import asynccontextmanager
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..engine import LycheeReranker
from ..inputs import return_freed_pixels
from ..results import RerankResult
from . import dialects, offline_docs
from .metrics import ServerMetrics
from .middleware import (
    AuthMiddleware,
    BodyLimitMiddleware,
    InternalErrorMiddleware,
    MetricsMiddleware,
)
from .schemas import (
    AnalyzeRequest,
    AnalyzeResponse,
    ErrorResponse,
    HealthResponse,
    ImageInfo,
    MultimodalItem,
    RerankRequest,
    RerankResponse,
    RerankResultItem,
    SeedRerankRequest,
    SeedRerankResponse,
    SeedResult,
    Usage,
)
from .service import ApiError, Loader, ModelHolder, RerankService, default_loader, error_response
from .settings import ServerSettings
from .sources import LimitExceeded

__all__ = ["ApiError", "ModelHolder", "RerankService", "create_app", "default_loader", "error_response"]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body could not be read as JSON (e.g. not UTF-8)."},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key."},
    408: {"model": ErrorResponse, "description": "Request head (or trailers) not complete within head_timeout_s."},
    413: {"model": ErrorResponse, "description": "A limit was passed; the body names it, the value and the maximum."},
    422: {"model": ErrorResponse, "description": "The request is malformed or its query cannot be used."},
    431: {"model": ErrorResponse, "description": "Request line and headers over max_header_bytes."},
    503: {"model": ErrorResponse, "description": "Model loading, or queue full (see Retry-After)."},
    504: {"model": ErrorResponse, "description": "The request took longer than request_timeout_s."},
}


# --------------------------------------------------------------------------- the app
def create_app(
    settings: Optional[ServerSettings] = None,
    reranker: Optional[LycheeReranker] = None,
    *,
    loader: Optional[Loader] = None,
) -> FastAPI:
    """Build the service. With ``reranker`` it serves that one at once; otherwise ``loader``
    (default: the backend and model in ``settings``) runs in the background at start-up."""
    settings = settings or ServerSettings()
    return_freed_pixels()
    service = RerankService(settings, reranker, loader)
    metrics = service.metrics

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        service.holder.start()
        yield
        service.worker.shutdown()

    app = FastAPI(
        title="lychee-rerank",
        version=__version__,
        summary="Multimodal (text + image) reranking with lychee-rerank-mm.",
        description=(
            "Rerank texts, images or both against a query. `/v1/rerank` speaks the Cohere v2 / Jina / vLLM "
            "shape; a document with text and an image is one document with one score. Per-document "
            "failures are reported in that document's result, an image over a limit included; request limits "
            "(body, documents, text, the query's image) answer 413 with the limit named."
        ),
        lifespan=lifespan,
        docs_url=None,  # served from the installed package's assets instead (serving.offline_docs)
        redoc_url=None,
    )
    app.state.service = service
    app.state.settings = settings  # who serves the app takes its HTTP limits (head size and time) from here
    app.state.reader = service.reader  # tests swap its resolver

    # Outermost last: metrics see everything, auth runs before any body is read.
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_request_bytes, metrics=metrics, read_timeout_s=settings.body_timeout_s,
        max_json_values=settings.json_values_limit,
    )
    if settings.api_key_value:
        app.add_middleware(AuthMiddleware, api_key=settings.api_key_value, metrics=metrics)
    app.add_middleware(InternalErrorMiddleware, metrics=metrics)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _install_error_handlers(app, metrics)
    app.include_router(router)
    dialects.install(app, dialects.RouteOps(
        require=service.holder.require, resolve=service.resolve, prepare=service.prepare,
        rerank_prepared=service.rerank_prepared, rerank_v1=lambda body: rerank_v1(body, service),
        error=ApiError, responses=ERROR_RESPONSES, max_documents=settings.max_documents,
        max_queue=settings.max_queue, created=int(time.time()),
    ))
    offline_docs.install(app)
    _install_openapi(app, settings)
    return app


def get_service(request: Request) -> RerankService:
    """The app's :class:`RerankService` (a FastAPI dependency of every route)."""
    return request.app.state.service


Service = Annotated[RerankService, Depends(get_service)]
router = APIRouter()


# --------------------------------------------------------------------------- routes
async def rerank_v1(body: RerankRequest, service: Service) -> RerankResponse:
    t0 = time.perf_counter()
    rr = service.holder.require()
    instruction = service.resolve(rr, body.instruction, body.template)
    prepared = await service.prepare(rr, body.query, body.documents, t0)
    # Everything is scored (usage counts every pair the model read), then cut to top_n.
    results = await service.rerank_prepared("/v1/rerank", rr, prepared, instruction, t0)
    tokens = dialects.usage_tokens(results, prepared)
    results = dialects.cut(results, body.top_n, body.score_threshold)
    items = [
        RerankResultItem(
            index=r.index,
            relevance_score=dialects.raw_score(r) if body.raw_scores else r.score,
            document=body.echo(r.index, prepared.echoes[r.index]) if body.return_documents else None,
            error=r.error,
            truncated=True if r.truncated else None,
        )
        for r in results
    ]
    failed = sum(1 for r in results if r.error is not None)  # failures survive top_n; scored ones may not
    usage = Usage(
        documents=len(body.documents), scored=len(body.documents) - failed, images=prepared.images,
        prompt_tokens=tokens, total_tokens=tokens,
    )
    return RerankResponse(id=uuid.uuid4().hex, model=str(rr.info.get("model")), results=items, usage=usage)


# /rerank (also TEI's shape) is in serving.dialects.
for _path, _name in (("/v1/rerank", "rerank"), ("/v2/rerank", "rerank_v2_alias")):
    router.add_api_route(
        _path, rerank_v1, methods=["POST"], response_model=RerankResponse, response_model_exclude_none=True,
        responses=ERROR_RESPONSES, operation_id=_name, tags=["rerank"],
        summary="Rerank documents" if _path == "/v1/rerank" else "Rerank documents (alias of /v1/rerank)",
    )


@router.post(
    "/api/rerank", response_model=SeedRerankResponse, response_model_exclude_none=True,
    responses=ERROR_RESPONSES, tags=["rerank"], summary="Rerank in the Docker/Streamlit article's shape",
)
async def rerank_seed(body: SeedRerankRequest, service: Service) -> SeedRerankResponse:
    """`query: {text, image}`, `documents: [{text, image}]`, `mode`; results carry `score` and the logits."""
    t0 = time.perf_counter()
    rr = service.holder.require()
    instruction = service.resolve(rr, body.instruction, None)
    to_item = lambda s: MultimodalItem(text=s.text, image=s.image, video=s.video, video_url=s.video_url)  # noqa: E731
    prepared = await service.prepare(rr, to_item(body.query), [to_item(d) for d in body.documents], t0)
    results = await service.rerank_prepared("/api/rerank", rr, prepared, instruction, t0)
    return SeedRerankResponse(
        mode=body.mode,
        model=str(rr.info.get("model")),
        results=[
            SeedResult(
                index=r.index, rank=r.rank, score=r.score, text=body.documents[r.index].text,
                yes_logit=r.yes_logit, no_logit=r.no_logit, error=r.error,
            )
            for r in results
        ],
        elapsed_ms=round((time.perf_counter() - t0) * 1000, 3),
    )


@router.post(
    "/v1/analyze", response_model=AnalyzeResponse, responses=ERROR_RESPONSES, tags=["debug"],
    summary="Explain one pair: score, yes/no logits, the prompt as built",
)
async def analyze(body: AnalyzeRequest, service: Service) -> AnalyzeResponse:
    """For a surprising score: shows exactly what the model read (images as placeholders)."""
    t0 = time.perf_counter()
    rr = service.holder.require()
    instruction = service.resolve(rr, body.instruction, body.template)
    prepared = await service.prepare(rr, body.query, [body.document], t0)
    failure = prepared.failures.get(0)
    if isinstance(failure, LimitExceeded):
        service.metrics.errors.labels("limit").inc()
        raise ApiError.from_limit(failure)  # the one document is the request: 413, limit named
    if failure is not None:
        raise ApiError(422, "invalid_document", str(failure))
    document = prepared.contents[0]
    assert document is not None
    used = instruction if instruction is not None else rr.backend.default_instruction  # none asked: the family's
    messages = rr.backend.prompt_messages(prepared.query, document, used)

    def job(cancel: threading.Event) -> tuple[RerankResult, str]:
        result = rr.rerank(
            prepared.query, [document], instruction=instruction, batch_size=1, progress=service.batch_observer(cancel)
        )[0]
        text = rr.backend.render_prompt(prepared.query, document, instruction)
        return result, text or plain_prompt(messages or [])

    service.metrics.documents.labels("/v1/analyze").inc()
    result, prompt_text = await service.on_model("/v1/analyze", t0, job)
    if result.error is not None:
        service.metrics.errors.labels("document").inc()
        raise ApiError(422, "invalid_document", result.error)
    images = [
        ImageInfo(side=side, width=c.image_size[0], height=c.image_size[1])  # known without decoding
        for side, c in (("query", prepared.query), ("document", document))
        if c.image_size is not None
    ]
    info = rr.info
    return AnalyzeResponse(
        model=str(info.get("model")), backend=str(info.get("backend")), score=result.score,
        yes_logit=result.yes_logit, no_logit=result.no_logit, instruction=used, prompt=prompt_text,
        messages=messages, images=images,
        truncated=result.truncated, evidence=result.evidence,
    )


@router.get(
    "/health", response_model=HealthResponse, tags=["service"], summary="Readiness and what is loaded",
    responses={503: {"model": HealthResponse, "description": "Loading, or loading failed."}},
)
async def health(service: Service) -> JSONResponse:
    """Never needs the API key: load balancers probe it. 503 until the model is ready."""
    holder = service.holder
    info = holder.reranker.info if holder.reranker is not None else {}
    payload = HealthResponse(
        status=holder.status,  # type: ignore[arg-type]
        backend=info.get("backend"), model=_str_or_none(info.get("model")), family=_str_or_none(info.get("family")),
        device=_str_or_none(info.get("device")),
        dtype=_str_or_none(info.get("dtype")), attn_implementation=_str_or_none(info.get("attn_implementation")),
        uptime_s=round(time.monotonic() - service.started, 3), error=holder.error, note=_str_or_none(info.get("note")),
    )
    return JSONResponse(payload.model_dump(), status_code=200 if holder.status == "ok" else 503)


# Load balancers probe with HEAD too; same answer, no body (kept out of the schema: one operation).
router.add_api_route("/health", health, methods=["HEAD"], include_in_schema=False)


@router.get("/metrics", tags=["service"], summary="Prometheus metrics", response_class=Response)
async def prometheus(service: Service) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _str_or_none(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def plain_prompt(messages: list[dict]) -> str:
    """A readable rendering of chat messages, for backends without a chat template."""
    lines = []
    for message in messages:
        parts = "".join("<image>" if p.get("type") == "image" else p.get("text", "") for p in message["content"])
        lines.append(f"{message['role']}: {parts}")
    return "\n".join(lines)


def _install_error_handlers(app: FastAPI, metrics: ServerMetrics) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.errors.labels("validation").inc()
        details = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()[:20]
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(x) for x in first["loc"][1:]) or "body"
        return error_response(422, "invalid_request", f"{where}: {first['msg']}", details=details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        metrics.errors.labels("http").inc()
        kind = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, kind, str(exc.detail), headers=getattr(exc, "headers", None))


def _install_openapi(app: FastAPI, settings: ServerSettings) -> None:
    """The generated schema, plus this server's document limit and, with a key, the bearer scheme."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes
            )
            # The contract states this server's own limit, so clients (and fuzzers) can see it.
            for name in ("RerankRequest", "SeedRerankRequest"):
                documents = schema.get("components", {}).get("schemas", {}).get(name, {}).get("properties", {}).get("documents")
                if documents is not None:
                    documents["maxItems"] = settings.max_documents
            if settings.api_key_value:
                schema.setdefault("components", {})["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
                schema["security"] = [{"bearer": []}]
                for method in schema["paths"]["/health"].values():
                    method["security"] = []
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
