"""Request micro-batching: concurrent rerank requests share forward passes.

Every request registers its call here, then queues a job on the single model thread. The first
job to run waits up to ``max_wait_ms`` (from its own arrival) for company, takes every request
registered meanwhile (up to ``max_docs`` documents), and scores them together with
:meth:`LycheeReranker.rerank_many`; the jobs of the requests it took find their results ready.
Each response holds exactly its own documents' scores, the same as if it had run alone.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..engine import LycheeReranker
from ..results import RerankResult


@dataclass
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


class _Regroup(Exception):
    """A shared pass stops because some (not all) of its requests gave up."""


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
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[int, int], BaseException] = lambda done, total: RuntimeError("cancelled"),
    ) -> tuple[list[RerankResult], int]:
        """On the model thread: this slot's results, and how many requests shared the pass.

        The pass stops at its next batch once any request it serves has given up: with every
        request gone it raises ``cancelled(done, total)``; otherwise the requests still waiting
        are scored again without the ones that left, so abandoned work never holds the thread
        for the others (it used to run to the end while any request of its pass was alive).
        """
        if slot.done.is_set():
            return slot.get(), 0
        if slot.cancel.is_set():  # its request gave up while queued: nothing to start
            self.discard(slot)
            raise cancelled(0, slot.size)
        wait = self.max_wait_s - (time.monotonic() - slot.arrived)
        if wait > 0:
            time.sleep(wait)
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
        shared = len(taken)
        while True:
            gone = [s for s in taken if s.cancel.is_set()]
            if gone:
                # Requests that gave up leave the pass; the others are scored without them.
                stop = cancelled(0, sum(s.size for s in gone))
                for s in gone:
                    s.settle(stop)
                taken = [s for s in taken if s not in gone]
            if not taken:
                return slot.get(), shared  # raises: this slot gave up too
            try:
                outcomes = self._pass(rr, taken, progress, cancelled)
            except _Regroup:
                continue  # someone gave up mid-pass: run again for those still waiting
            for s, outcome in zip(taken, outcomes):
                s.settle(outcome)
            return slot.get(), shared

    def _pass(
        self, rr: LycheeReranker, taken: list[Slot], progress: Callable[[int, int], None] | None,
        cancelled: Callable[[int, int], BaseException],
    ) -> list[list[RerankResult] | BaseException]:
        """Score ``taken`` in shared forward passes; stop at a batch boundary when any of them gives up.

        Every request gone: ``cancelled(done, total)`` is raised and every slot settled with it.
        Some gone: :class:`_Regroup` is raised, and the caller runs the rest again without them
        (a pair's score does not depend on its batch-mates, so nothing changes for them).
        """

        def on_batch(done: int, total: int) -> None:
            if progress is not None:
                progress(done, total)
            flags = [s.cancel.is_set() for s in taken]
            if all(flags):
                raise cancelled(done, total)
            if any(flags):
                raise _Regroup()

        try:
            return rr.rerank_many([s.call for s in taken], batch_size=self.batch_size, progress=on_batch)
        except _Regroup:
            raise
        except BaseException as exc:
            if len(taken) == 1 or all(s.cancel.is_set() for s in taken):
                for s in taken:  # settle everyone, or their requests would wait forever
                    s.settle(exc)
                raise
        # One request's failure must not sink the others it shared the pass with: each live
        # request is scored again on its own, and only the failing one gets the error.
        outcomes: list[list[RerankResult] | BaseException] = []
        for s in taken:
            if s.cancel.is_set():
                outcomes.append(cancelled(0, s.size))
                continue
            single = [s]

            def own_batch(done: int, total: int, single: list[Slot] = single) -> None:
                if progress is not None:
                    progress(done, total)
                if single[0].cancel.is_set():
                    raise cancelled(done, total)

            try:
                outcomes.extend(rr.rerank_many([s.call], batch_size=self.batch_size, progress=own_batch))
            except BaseException as own:  # noqa: BLE001 - reported in that request's slot
                outcomes.append(own)
        return outcomes
