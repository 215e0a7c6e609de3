"""The HTTP service's behaviour, apart from its routes: one :class:`RerankService` per app.

It owns what every route shares (the model holder, the one model thread, micro-batching, the
request reader, metrics) and the steps of a request: read and decode within the deadline,
resolve the instruction, run on the model thread, merge per-document failures back. Routes in
:mod:`.app` stay thin: parse the body, call these, shape the response.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Callable, Optional, Sequence

from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..engine import LycheeReranker
from ..prompt import resolve_instruction
from ..results import RerankResult
from .coalesce import Coalescer
from .metrics import ServerMetrics
from .middleware import client_gone
from .reading import InvalidQuery, Prepared, RequestReader, merge_results
from .settings import ServerSettings
from .sources import LimitExceeded, UrlFetcher
from .worker import Cancelled, ModelWorker, Overloaded, RequestTimeout

logger = logging.getLogger(__name__)

Loader = Callable[[ServerSettings], LycheeReranker]


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
    return LycheeReranker.from_config(settings.reranker_config(), notice=logger.warning)


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


class RerankService:
    """Everything a route needs, built once per app from the settings."""

    def __init__(self, settings: ServerSettings, reranker: Optional[LycheeReranker], loader: Optional[Loader]) -> None:
        self.settings = settings
        self.metrics = ServerMetrics()
        self.holder = ModelHolder(reranker, loader or default_loader, settings, self.metrics)
        self.worker = ModelWorker(settings.max_queue, self.metrics)
        self.coalescer = Coalescer(settings.max_wait_ms, settings.max_batch_documents, settings.batch_size)
        fetcher = (
            UrlFetcher(max_bytes=settings.max_image_bytes, timeout_s=settings.url_timeout_s, max_redirects=settings.url_max_redirects)
            if settings.allow_urls
            else None
        )
        self.reader = RequestReader(settings, fetcher)
        self.started = time.monotonic()

    def deadline_left(self, t0: float) -> float:
        return self.settings.request_timeout_s - (time.perf_counter() - t0)

    def timeout_error(self, t0: float) -> ApiError:
        self.metrics.errors.labels("timeout").inc()
        limit = self.settings.request_timeout_s
        return ApiError(
            504, "timeout", f"the request took longer than {limit:g} s (request_timeout_s)",
            limit="request_timeout_s", value=round(time.perf_counter() - t0, 3), max=limit,
        )

    async def prepare(self, rr: LycheeReranker, query: Any, documents: Sequence[Any], t0: float) -> Prepared:
        """Read and decode the request's inputs off the event loop, within the request's deadline."""
        try:
            return await asyncio.wait_for(
                run_in_threadpool(self.reader.prepare, rr, query, documents, t0 + self.settings.request_timeout_s),
                self.deadline_left(t0),
            )
        except LimitExceeded as exc:
            self.metrics.errors.labels("limit").inc()
            raise ApiError.from_limit(exc) from None
        except InvalidQuery as exc:
            raise ApiError(422, "invalid_query", str(exc)) from None
        except asyncio.TimeoutError:
            raise self.timeout_error(t0) from None

    async def on_model(
        self, route: str, t0: float, job: Callable[[threading.Event], Any], cancel: threading.Event | None = None,
    ) -> Any:
        """Run ``job(cancel)`` on the model thread; a full queue is 503, a passed deadline 504.

        ``cancel`` is the request's cancel signal (see :meth:`ModelWorker.run`): set once the
        request gives up, read by the job at its batch boundaries."""
        worker = self.worker
        try:
            began = time.perf_counter()
            result = await self.until_client_gone(worker.run(job, self.deadline_left(t0), cancel))
            self.metrics.model_latency.labels(route).observe(time.perf_counter() - began)
            return result
        except Overloaded:
            self.metrics.errors.labels("overloaded").inc()
            raise ApiError(
                503, "overloaded", f"the server is busy ({worker.max_queue} requests admitted, max_queue); retry shortly",
                headers={"Retry-After": "1"}, limit="max_queue", value=worker.depth, max=worker.max_queue,
            ) from None
        except RequestTimeout:
            raise self.timeout_error(t0) from None

    async def until_client_gone(self, work: Any) -> Any:
        """Await ``work``; if the client disconnects first, stop waiting (499): the cancelled wait
        sets the request's cancel signal and the model stops at its next batch boundary."""
        task = asyncio.ensure_future(work)
        watch = asyncio.ensure_future(client_gone())
        watch.add_done_callback(lambda t: t.cancelled() or t.exception())  # a failed watch is no news
        try:
            await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
        if task.done():
            return task.result()
        task.cancel()
        self.metrics.errors.labels("client_gone").inc()
        raise ApiError(499, "client_closed_request", "the client closed the connection before the answer")

    def batch_recorder(self) -> Callable[[int, int], None]:
        """Progress callback recording each forward pass's size."""
        last = 0

        def record(done: int, total: int) -> None:
            nonlocal last
            self.metrics.batch_size.observe(max(done - last, 0))
            last = done

        return record

    def batch_observer(self, cancel: threading.Event) -> Callable[[int, int], None]:
        """Progress callback of a job run alone: records each pass, stops once ``cancel`` is set."""
        record = self.batch_recorder()

        def progress(done: int, total: int) -> None:
            record(done, total)
            if cancel.is_set():
                raise self.abandoned(done, total)

        return progress

    def abandoned(self, done: int, total: int) -> BaseException:
        """Counted when a request's work stops because it gave up, with the pairs it left unscored;
        the exception its job ends with."""
        self.metrics.abandoned_jobs.inc()
        self.metrics.abandoned_pairs.inc(max(total - done, 0))
        return Cancelled()

    def resolve(self, rr: LycheeReranker, instruction: Optional[str], template: Optional[str]) -> Optional[str]:
        """The instruction text a request asks for (its own or a named template); ``None``: the family's default."""
        try:
            text = resolve_instruction(instruction, template, rr.templates_file)
            self.reader.check_text(text, "instruction")
        except LimitExceeded as exc:
            self.metrics.errors.labels("limit").inc()
            raise ApiError.from_limit(exc) from None
        except ValueError as exc:
            raise ApiError(422, "invalid_request", str(exc)) from None
        return text

    async def rerank_prepared(
        self, route: str, rr: LycheeReranker, prepared: Prepared, instruction: str, t0: float,
    ) -> list[RerankResult]:
        """Score the readable documents (micro-batched with concurrent requests); failures keep their slot.

        Every document is scored and ranked: routes cut to their ``top_n``/threshold afterwards, so
        ``usage`` counts every pair the model read."""
        metrics, coalescer = self.metrics, self.coalescer
        valid = [i for i, c in enumerate(prepared.contents) if c is not None]
        metrics.documents.labels(route).inc(len(prepared.contents))
        metrics.documents_per_request.observe(len(prepared.contents))

        if not valid:
            return merge_results([], valid, prepared.failures)
        # Micro-batching: concurrent requests arriving within max_wait_ms share forward passes.
        # The request's cancel signal goes with its slot: a pass drops the slot once it is set.
        cancel = threading.Event()
        slot = coalescer.add(
            {"query": prepared.query, "documents": [prepared.contents[i] for i in valid], "instruction": instruction},
            cancel,
        )

        def job(cancel: threading.Event) -> list[RerankResult]:
            stats = rr.backend.stats
            oom_before = stats.get("oom_backoffs", 0)
            results, shared = coalescer.run(rr, slot, progress=self.batch_recorder(), cancelled=self.abandoned)
            if shared:
                metrics.coalesced.observe(shared)
            metrics.oom_backoffs.inc(stats.get("oom_backoffs", 0) - oom_before)
            return results

        try:
            scored = await self.on_model(route, t0, job, cancel)
        finally:
            # Answered, refused (503 before the worker saw it), timed out or gone: no pass may
            # take this slot now (setting the signal of a settled slot changes nothing).
            cancel.set()
            coalescer.discard(slot)
        results = merge_results(scored, valid, prepared.failures)
        failed = sum(1 for r in results if r.error is not None)
        if failed:
            metrics.errors.labels("document").inc(failed)
        return results
