"""One thread runs every model call; a bounded count of admitted requests protects it.

Why one thread: the model object keeps state between calls (rope deltas, caches) and a GPU
does not go faster with two Python threads feeding it; serialising keeps scores exact and
memory predictable. Why bounded: past ``max_queue`` admitted requests, a new one is refused
at once (503 + Retry-After) instead of waiting behind minutes of work.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

from .metrics import ServerMetrics

T = TypeVar("T")


class Overloaded(Exception):
    """The queue is full."""


class RequestTimeout(Exception):
    """The request's deadline passed before the model answered."""


class Cancelled(Exception):
    """Raised inside a job whose request gave up (timeout or client gone), to stop between batches."""


class ModelWorker:
    def __init__(self, max_queue: int, metrics: ServerMetrics) -> None:
        self.max_queue = max_queue
        self.metrics = metrics
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lychee-model")
        self._lock = threading.Lock()
        self._admitted = 0

    @property
    def depth(self) -> int:
        return self._admitted

    def _leave(self) -> None:
        with self._lock:
            self._admitted -= 1
            self.metrics.queue_depth.set(self._admitted)

    async def run(self, job: Callable[[threading.Event], T], timeout_s: float, cancel: threading.Event | None = None) -> T:
        """Run ``job(cancel)`` on the model thread, within ``timeout_s`` seconds.

        ``cancel`` is the request's one cancel signal (a new one if not given): it is set here
        when the request gives up (its deadline passes, or this wait is cancelled because the
        client left), and a job still queued then never starts. A job that runs checks it at
        its batch boundaries and keeps its place in the queue until it really stops, so the
        queue depth always reflects the model's load.
        """
        with self._lock:
            if self._admitted >= self.max_queue:
                raise Overloaded()
            self._admitted += 1
            self.metrics.queue_depth.set(self._admitted)
        cancel = cancel if cancel is not None else threading.Event()

        def guarded() -> T:
            try:
                if cancel.is_set():
                    raise Cancelled()
                return job(cancel)
            finally:
                self._leave()

        try:
            future = asyncio.get_running_loop().run_in_executor(self._executor, guarded)
            # A job abandoned on timeout still ends (often with Cancelled): read its outcome so
            # asyncio does not log "exception was never retrieved".
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
        except BaseException:
            self._leave()
            raise
        try:
            # shield: cancelling the waiter must not drop a queued job, whose finally frees the slot.
            return await asyncio.wait_for(asyncio.shield(future), timeout=max(timeout_s, 0.0))
        except asyncio.TimeoutError:
            raise RequestTimeout() from None
        finally:
            if not future.done():  # timed out, or this wait was cancelled: the request gave up
                cancel.set()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=False)
