"""Request micro-batching: concurrent rerank requests share forward passes.

Every request registers its call here, then queues a job on the single model thread. The first
job to run waits up to ``max_wait_ms`` (from its own arrival) for company, takes every request
registered meanwhile (up to ``max_docs`` documents), and scores them together with
:meth:`LycheeReranker.rerank_many`; the jobs of the requests it took find their results ready.
Each response holds exactly its own documents' scores, the same as if it had run alone.

Cancellation has one signal: each request's ``cancel`` event, set when the request gives up
(its deadline passed, its client left). A pass reads it at every batch boundary and drops the
requests that left; nothing else stops work.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..engine import LycheeReranker
from ..results import RerankResult

ProgressCallback = Callable[[int, int], None]


@dataclass(eq=False)  # a slot is itself: compared by identity, never field by field
class Slot:
    """One request's call, and later its results (or the exception it raised)."""

    call: dict[str, Any]
    cancel: threading.Event
    arrived: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    result: list[RerankResult] | None = None
    error: BaseException | None = None

    @property
    def size(self) -> int:
        return max(1, len(self.call.get("documents", ())))

    def settle(self, value: list[RerankResult] | BaseException) -> None:
        if isinstance(value, BaseException):
            self.error = value
        else:
            self.result = value
        self.done.set()

    def get(self) -> list[RerankResult]:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class _Left(Exception):
    """Raised at a batch boundary of a pass once one of its requests gave up: the pass stops there."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"a request left after {done} of {total} pairs")
        self.done = done
        self.total = total


class Coalescer:
    def __init__(self, max_wait_ms: float = 5.0, max_docs: int = 256, batch_size: int = 8) -> None:
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_docs = max_docs
        self.batch_size = batch_size
        self._pending: list[Slot] = []
        self._lock = threading.Lock()

    def add(self, call: dict[str, Any], cancel: threading.Event) -> Slot:
        slot = Slot(call, cancel)
        with self._lock:
            self._pending.append(slot)
        return slot

    def discard(self, slot: Slot) -> None:
        with self._lock:
            if slot in self._pending:
                self._pending.remove(slot)

    def run(
        self,
        rr: LycheeReranker,
        slot: Slot,
        progress: ProgressCallback | None = None,
        cancelled: Callable[[int, int], BaseException] = lambda done, total: RuntimeError("cancelled"),
    ) -> tuple[list[RerankResult], int]:
        """On the model thread: this slot's results, and how many requests shared the pass.

        A request that gave up gets ``cancelled(done, total)`` (the pairs left unscored), at the
        latest at the next batch boundary: abandoned work never holds the thread for the others.
        """
        if slot.done.is_set():
            return slot.get(), 0
        wait = self.max_wait_s - (time.monotonic() - slot.arrived)
        if wait > 0 and not slot.cancel.is_set():
            time.sleep(wait)
        taken = self._take(slot)
        self._serve(rr, taken, progress, cancelled)
        return slot.get(), len(taken)

    def _take(self, slot: Slot) -> list[Slot]:
        """``slot`` and the requests still waiting, up to ``max_docs`` documents, off the queue."""
        with self._lock:
            taken, docs = [slot], slot.size
            for other in self._pending:
                if other is slot or other.cancel.is_set():
                    continue
                if docs + other.size > self.max_docs:
                    break
                taken.append(other)
                docs += other.size
            for s in taken:
                if s in self._pending:
                    self._pending.remove(s)
        return taken

    def _serve(
        self, rr: LycheeReranker, taken: list[Slot], progress: ProgressCallback | None,
        cancelled: Callable[[int, int], BaseException],
    ) -> None:
        """Score ``taken`` in shared passes until every slot is settled.

        A request that gave up leaves the pass at the next batch boundary and the others run
        again without it (a pair's score does not depend on its batch-mates). A pass that fails
        is run again one request at a time, so only the failing request gets the error.
        """
        while taken:
            gone = [s for s in taken if s.cancel.is_set()]
            for s in gone:
                s.settle(cancelled(0, s.size))
            taken = [s for s in taken if s not in gone]
            if not taken:
                return

            def on_batch(done: int, total: int, taken: list[Slot] = taken) -> None:
                if progress is not None:
                    progress(done, total)
                if any(s.cancel.is_set() for s in taken):
                    raise _Left(done, total)

            try:
                outcomes = rr.rerank_many([s.call for s in taken], batch_size=self.batch_size, progress=on_batch)
            except _Left as left:
                if all(s.cancel.is_set() for s in taken):  # all of them: count what the pass had left
                    stop = cancelled(left.done, left.total)
                    for s in taken:
                        s.settle(stop)
                    return
                continue
            except BaseException as exc:  # noqa: BLE001 - settled on the slots; their requests raise it
                if len(taken) == 1:
                    taken[0].settle(exc)
                    return
                for s in taken:
                    self._serve(rr, [s], progress, cancelled)
                return
            for s, outcome in zip(taken, outcomes):
                s.settle(outcome)
            return
