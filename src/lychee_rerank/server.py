"""``lychee serve``: the HTTP service (FastAPI) around :class:`~lychee_rerank.LycheeReranker`.

Routes: ``POST /v1/rerank`` (and ``/rerank``, ``/v2/rerank``) in the Cohere v2 / Jina / vLLM
shape, ``POST /api/rerank`` in the shape of the Docker/Streamlit article, ``POST /v1/analyze``
for one pair, ``GET /health``, ``GET /metrics``; the contract is in :mod:`lychee_rerank.api`.

Every request image becomes bytes in :mod:`lychee_rerank.sources` (which enforces what the
operator allowed), then a :class:`~lychee_rerank.inputs.Content` through the same
:func:`~lychee_rerank.inputs.to_content` the library uses, so a pair scores the same over HTTP
as in Python. All model calls run on one thread (:mod:`lychee_rerank.worker`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any, Callable, Optional, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from .api import (
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
from .engine import LycheeReranker
from .inputs import ImageLimits
from .middleware import (
    AuthMiddleware,
    BodyLimitMiddleware,
    InternalErrorMiddleware,
    MetricsMiddleware,
)
from .prompt import build_messages, resolve_instruction
from .reading import InvalidQuery, Prepared, RequestReader, merge_results
from .results import RerankResult
from .server_metrics import ServerMetrics
from .settings import ServerSettings
from .sources import LimitExceeded, UrlFetcher
from .coalesce import Coalescer
from .worker import Cancelled, ModelWorker, Overloaded, RequestTimeout

logger = logging.getLogger("lychee_rerank.server")

Loader = Callable[[ServerSettings], LycheeReranker]
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body could not be read as JSON (e.g. not UTF-8)."},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key."},
    413: {"model": ErrorResponse, "description": "A limit was passed; the body names it, the value and the maximum."},
    422: {"model": ErrorResponse, "description": "The request is malformed or its query cannot be used."},
    503: {"model": ErrorResponse, "description": "Model loading, or queue full (see Retry-After)."},
    504: {"model": ErrorResponse, "description": "The request took longer than request_timeout_s."},
}


class ApiError(Exception):
    """An error with a status and a JSON body ``{"error": {...}}``; never a traceback."""

    def __init__(self, status: int, type_: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers
        self.extra = {k: v for k, v in extra.items() if v is not None}

    @classmethod
    def from_limit(cls, exc: LimitExceeded) -> "ApiError":
        return cls(exc.status, "limit_exceeded", str(exc), limit=exc.limit, value=exc.value, max=exc.maximum)

    def response(self) -> JSONResponse:
        return error_response(self.status, self.type, self.message, headers=self.headers, **self.extra)


def error_response(status: int, type_: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"type": type_, "message": message, **extra}}, status_code=status, headers=headers)


# --------------------------------------------------------------------------- model lifecycle
def default_loader(settings: ServerSettings) -> LycheeReranker:
    """Load the backend the settings name, with the server's image limits."""
    from .selection import choose_backend

    choice = choose_backend(settings.backend, settings.model)
    if choice.notice:
        logger.warning(choice.notice)
    limits = ImageLimits(max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)
    if choice.backend == "lychee":
        kwargs: dict[str, Any] = {}
        if settings.model_max_pixels is not None:
            kwargs["max_pixels"] = settings.model_max_pixels
        if settings.adapter:
            kwargs["adapter"] = settings.adapter
        return LycheeReranker.load(
            "lychee", choice.model, device=settings.device, dtype=settings.dtype,
            attn_implementation=settings.attn_implementation, image_limits=limits, **kwargs,
        )
    return LycheeReranker.load("lite", image_limits=limits)


class ModelHolder:
    """The reranker, loaded once in the background so ``/health`` can answer 503 meanwhile."""

    def __init__(self, reranker: Optional[LycheeReranker], loader: Loader, settings: ServerSettings, metrics: ServerMetrics):
        self.reranker = reranker
        self.loader = loader
        self.settings = settings
        self.metrics = metrics
        self.error: Optional[str] = None
        self._thread: Optional[threading.Thread] = None
        if reranker is not None:
            metrics.model_loaded.set(1)

    @property
    def status(self) -> str:
        if self.reranker is not None:
            return "ok"
        return "error" if self.error is not None else "loading"

    def start(self) -> None:
        if self.reranker is None and self._thread is None:
            self._thread = threading.Thread(target=self._load, name="lychee-load", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            reranker = self.loader(self.settings)
        except Exception as exc:  # noqa: BLE001 - reported on /health, the process stays up to say so
            logger.exception("model failed to load")
            self.error = f"{type(exc).__name__}: {exc}"[:500]
            return
        self.reranker = reranker
        self.metrics.model_loaded.set(1)
        logger.info("model ready in %.1f s: %s", time.perf_counter() - started, reranker.info)

    def require(self) -> LycheeReranker:
        if self.reranker is not None:
            return self.reranker
        if self.error is not None:
            raise ApiError(503, "unavailable", f"the model failed to load: {self.error}")
        raise ApiError(503, "loading", "the model is still loading; retry shortly", headers={"Retry-After": "5"})


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
    metrics = ServerMetrics()
    holder = ModelHolder(reranker, loader or default_loader, settings, metrics)
    worker = ModelWorker(settings.max_queue, metrics)
    coalescer = Coalescer(settings.max_wait_ms, settings.max_batch_documents, settings.batch_size)
    fetcher = (
        UrlFetcher(max_bytes=settings.max_image_bytes, timeout_s=settings.url_timeout_s, max_redirects=settings.url_max_redirects)
        if settings.allow_urls
        else None
    )
    reader = RequestReader(settings, fetcher)
    started = time.monotonic()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        holder.start()
        yield
        worker.shutdown()

    app = FastAPI(
        title="lychee-rerank",
        version=__version__,
        summary="Multimodal (text + image) reranking with lychee-rerank-mm.",
        description=(
            "Rerank texts, images or both against a query. `/v1/rerank` speaks the Cohere v2 / Jina / vLLM "
            "shape; a document with text and an image is one document with one score. Per-document "
            "failures are reported in that document's result; limits answer 413 with the limit named."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.holder = holder
    app.state.worker = worker
    app.state.reader = reader

    # Outermost last: metrics see everything, auth runs before any body is read.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes, metrics=metrics)
    if settings.api_key_value:
        app.add_middleware(AuthMiddleware, api_key=settings.api_key_value, metrics=metrics)
    app.add_middleware(InternalErrorMiddleware, metrics=metrics)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _install_error_handlers(app, metrics)

    # ----------------------------------------------------------------- helpers
    def deadline_left(t0: float) -> float:
        return settings.request_timeout_s - (time.perf_counter() - t0)

    def timeout_error(t0: float) -> ApiError:
        metrics.errors.labels("timeout").inc()
        return ApiError(
            504, "timeout", f"the request took longer than {settings.request_timeout_s:g} s (request_timeout_s)",
            limit="request_timeout_s", value=round(time.perf_counter() - t0, 3), max=settings.request_timeout_s,
        )

    async def prepare(rr: LycheeReranker, query: Any, documents: Sequence[Any], t0: float) -> Prepared:
        try:
            return await asyncio.wait_for(run_in_threadpool(reader.prepare, rr, query, documents), deadline_left(t0))
        except LimitExceeded as exc:
            metrics.errors.labels("limit").inc()
            raise ApiError.from_limit(exc) from None
        except InvalidQuery as exc:
            raise ApiError(422, "invalid_query", str(exc)) from None
        except asyncio.TimeoutError:
            raise timeout_error(t0) from None

    async def on_model(route: str, t0: float, job: Callable[[threading.Event], Any]) -> Any:
        try:
            began = time.perf_counter()
            result = await worker.run(job, deadline_left(t0))
            metrics.model_latency.labels(route).observe(time.perf_counter() - began)
            return result
        except Overloaded:
            metrics.errors.labels("overloaded").inc()
            raise ApiError(
                503, "overloaded", f"the server is busy ({worker.max_queue} requests admitted, max_queue); retry shortly",
                headers={"Retry-After": "1"}, limit="max_queue", value=worker.depth, max=worker.max_queue,
            ) from None
        except RequestTimeout:
            raise timeout_error(t0) from None

    def batch_observer(cancel: threading.Event) -> Callable[[int, int], None]:
        """Progress callback: records each forward pass's size; stops a job whose request gave up."""
        last = 0

        def progress(done: int, total: int) -> None:
            nonlocal last
            metrics.batch_size.observe(done - last)
            last = done
            if cancel.is_set():
                raise Cancelled()

        return progress

    def resolve(rr: LycheeReranker, instruction: Optional[str], template: Optional[str]) -> str:
        try:
            text = resolve_instruction(instruction, template, rr.templates_file)
            reader.check_text(text, "instruction")
        except LimitExceeded as exc:
            metrics.errors.labels("limit").inc()
            raise ApiError.from_limit(exc) from None
        except ValueError as exc:
            raise ApiError(422, "invalid_request", str(exc)) from None
        return text

    async def rerank_prepared(
        route: str, rr: LycheeReranker, prepared: Prepared, instruction: str, t0: float,
        top_n: Optional[int] = None, score_threshold: Optional[float] = None,
    ) -> list[RerankResult]:
        valid = [i for i, c in enumerate(prepared.contents) if c is not None]
        metrics.documents.labels(route).inc(len(prepared.contents))
        metrics.documents_per_request.observe(len(prepared.contents))

        if not valid:
            return merge_results([], valid, prepared.failures)
        # Micro-batching: concurrent requests arriving within max_wait_ms share forward passes.
        slot = coalescer.add(
            {"query": prepared.query, "documents": [prepared.contents[i] for i in valid], "instruction": instruction,
             "top_k": top_n, "score_threshold": score_threshold},
            threading.Event(),
        )

        def job(cancel: threading.Event) -> list[RerankResult]:
            stats = getattr(rr.backend, "stats", {})
            oom_before = stats.get("oom_backoffs", 0)
            # A merged pass serves several requests: one request's timeout does not stop it (that
            # request still gets its 504 on time); it stops once all of them have given up.
            results, shared = coalescer.run(rr, slot, progress=batch_observer(threading.Event()), cancelled=Cancelled)
            if shared:
                metrics.coalesced.observe(shared)
            metrics.oom_backoffs.inc(stats.get("oom_backoffs", 0) - oom_before)
            return results

        try:
            scored = await on_model(route, t0, job)
        finally:
            if not slot.done.is_set():  # timed out or failed: nobody waits for this slot any more
                slot.cancel.set()
                coalescer.discard(slot)
        results = merge_results(scored, valid, prepared.failures)
        failed = sum(1 for r in results if r.error is not None)
        if failed:
            metrics.errors.labels("document").inc(failed)
        return results

    # ----------------------------------------------------------------- routes
    async def rerank_v1(body: RerankRequest) -> RerankResponse:
        t0 = time.perf_counter()
        rr = holder.require()
        instruction = resolve(rr, body.instruction, body.template)
        prepared = await prepare(rr, body.query, body.documents, t0)
        results = await rerank_prepared(
            "/v1/rerank", rr, prepared, instruction, t0, top_n=body.top_n, score_threshold=body.score_threshold
        )
        items = [
            RerankResultItem(
                index=r.index,
                relevance_score=r.score,
                document=prepared.echoes[r.index] if body.return_documents else None,
                error=r.error,
                truncated=True if r.truncated else None,
            )
            for r in results
        ]
        failed = sum(1 for r in results if r.error is not None)  # failures survive top_n; scored ones may not
        usage = Usage(documents=len(body.documents), scored=len(body.documents) - failed, images=prepared.images)
        return RerankResponse(id=uuid.uuid4().hex, model=str(rr.info.get("model")), results=items, usage=usage)

    for path, name in (("/v1/rerank", "rerank"), ("/rerank", "rerank_alias"), ("/v2/rerank", "rerank_v2_alias")):
        app.add_api_route(
            path, rerank_v1, methods=["POST"], response_model=RerankResponse, response_model_exclude_none=True,
            responses=ERROR_RESPONSES, operation_id=name, tags=["rerank"],
            summary="Rerank documents" if path == "/v1/rerank" else "Rerank documents (alias of /v1/rerank)",
        )

    @app.post(
        "/api/rerank", response_model=SeedRerankResponse, response_model_exclude_none=True,
        responses=ERROR_RESPONSES, tags=["rerank"], summary="Rerank in the Docker/Streamlit article's shape",
    )
    async def rerank_seed(body: SeedRerankRequest) -> SeedRerankResponse:
        """`query: {text, image}`, `documents: [{text, image}]`, `mode`; results carry `score` and the logits."""
        t0 = time.perf_counter()
        rr = holder.require()
        instruction = resolve(rr, body.instruction, None)
        to_item = lambda s: MultimodalItem(text=s.text, image=s.image)  # noqa: E731
        prepared = await prepare(rr, to_item(body.query), [to_item(d) for d in body.documents], t0)
        results = await rerank_prepared("/api/rerank", rr, prepared, instruction, t0)
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

    @app.post(
        "/v1/analyze", response_model=AnalyzeResponse, responses=ERROR_RESPONSES, tags=["debug"],
        summary="Explain one pair: score, yes/no logits, the prompt as built",
    )
    async def analyze(body: AnalyzeRequest) -> AnalyzeResponse:
        """For a surprising score: shows exactly what the model read (images as placeholders)."""
        t0 = time.perf_counter()
        rr = holder.require()
        instruction = resolve(rr, body.instruction, body.template)
        prepared = await prepare(rr, body.query, [body.document], t0)
        if prepared.failures:
            raise ApiError(422, "invalid_document", prepared.failures[0])
        document = prepared.contents[0]
        assert document is not None

        def job(cancel: threading.Event) -> tuple[RerankResult, str]:
            result = rr.rerank(
                prepared.query, [document], instruction=instruction, batch_size=1, progress=batch_observer(cancel)
            )[0]
            render = getattr(rr.backend, "render_prompt", None)
            text = render(prepared.query, document, instruction) if callable(render) else None
            return result, text or plain_prompt(build_messages(prepared.query, document, instruction).messages)

        metrics.documents.labels("/v1/analyze").inc()
        result, prompt_text = await on_model("/v1/analyze", t0, job)
        if result.error is not None:
            metrics.errors.labels("document").inc()
            raise ApiError(422, "invalid_document", result.error)
        images = [
            ImageInfo(side=side, width=c.image.width, height=c.image.height)
            for side, c in (("query", prepared.query), ("document", document))
            if c.image is not None
        ]
        info = rr.info
        return AnalyzeResponse(
            model=str(info.get("model")), backend=str(info.get("backend")), score=result.score,
            yes_logit=result.yes_logit, no_logit=result.no_logit, instruction=instruction, prompt=prompt_text,
            messages=build_messages(prepared.query, document, instruction).messages, images=images,
            truncated=result.truncated, evidence=result.evidence,
        )

    @app.get(
        "/health", response_model=HealthResponse, tags=["service"], summary="Readiness and what is loaded",
        responses={503: {"model": HealthResponse, "description": "Loading, or loading failed."}},
    )
    async def health() -> JSONResponse:
        """Never needs the API key: load balancers probe it. 503 until the model is ready."""
        info = holder.reranker.info if holder.reranker is not None else {}
        payload = HealthResponse(
            status=holder.status,  # type: ignore[arg-type]
            backend=info.get("backend"), model=_str_or_none(info.get("model")), device=_str_or_none(info.get("device")),
            dtype=_str_or_none(info.get("dtype")), attn_implementation=_str_or_none(info.get("attn_implementation")),
            uptime_s=round(time.monotonic() - started, 3), error=holder.error, note=_str_or_none(info.get("note")),
        )
        return JSONResponse(payload.model_dump(), status_code=200 if holder.status == "ok" else 503)

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    _install_openapi(app, settings)
    return app


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
                schema["paths"]["/health"]["get"]["security"] = []
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
