"""Micro-batching: concurrent callers' small jobs merged into one call per stage.

Why: a server answering many clients at once otherwise runs one model call per request
on as many threads as there are requests. Each call pays the model's fixed costs alone,
every call's inference threads compete for the same cores, and the threads take turns
at the GIL. An embedding server that batches (text-embeddings-inference, vLLM) does the
opposite: requests that arrive while the model is busy wait in a queue and go into the
next call together, so a busy server does more work per core, not less.

A :class:`Batcher` is one stage's queue and its executor: at most one call of the stage
runs at a time, so the model's own thread pool (sized to the cores) is the only one on
them. Callers block in :meth:`Batcher.submit` with a list of items. The executor is
whichever caller finds the stage idle (leader/followers): it takes everything queued,
its own items included (up to ``max_batch``), runs the stage function once and hands
each caller its slice; callers whose items ran return, and one of the rest leads the
next call. A lone caller therefore runs its call at once in its own thread, with no
hand-off to wake (on busy cores a hand-off to a dedicated thread cost 1.5 ms per stage).
``max_wait_s`` lets a leader wait a little for more work, only while ``expect()`` says
more queries are in flight than it has. If a merged call fails, each caller's items run
again alone, so one bad input fails only its own request.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: Told after every stage call: (stage, items in the call, each caller's seconds queued).
BatchListener = Callable[[str, int, Sequence[float]], None]


@dataclass
class _Request(Generic[T, R]):
    items: list[T]
    queued_at: float
    future: Future[list[R]] = field(default_factory=Future)


class Batcher(Generic[T, R]):
    """One stage's queue and executor; see the module docstring."""

    def __init__(
        self,
        stage: str,
        run: Callable[[list[T]], list[R]],
        max_batch: int = 32,
        max_wait_s: float = 0.0,
        expect: Callable[[], int] | None = None,
        listeners: list[BatchListener] | None = None,
    ) -> None:
        self.stage = stage
        self._run = run
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max(0.0, max_wait_s)
        self._expect = expect
        self.listeners = listeners if listeners is not None else []
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)  # the stage became idle
        self._arrived = threading.Condition(self._lock)  # work was queued
        self._queue: deque[_Request[T, R]] = deque()
        self._waiting = 0  # items queued, not yet in a call
        self._leader: int | None = None  # thread id running the stage, if any
        self._held = 0  # hold() blocks: no call starts while > 0

    @property
    def depth(self) -> int:
        """Items waiting for the stage (not counting the call under way)."""
        return self._waiting

    def submit(self, items: list[T]) -> list[R]:
        """Run ``items`` through the stage (with whatever else is queued); blocks."""
        if not items:
            return []
        if self._leader == threading.get_ident():
            return self._call(items)  # the stage calling itself: run inline
        request: _Request[T, R] = _Request(list(items), time.monotonic())
        with self._lock:
            self._queue.append(request)
            self._waiting += len(items)
            self._arrived.notify()
        while True:
            with self._lock:
                while (self._leader is not None or self._held) and not request.future.done():
                    self._free.wait()
                if request.future.done():
                    break
                self._leader = threading.get_ident()
                batch = self._collect()
            try:
                self._execute(batch)
            finally:
                with self._lock:
                    self._leader = None
                    self._free.notify_all()
        return request.future.result()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """No call of the stage starts inside the block (one under way finishes); work
        queued meanwhile runs together after it, as when a long call holds the stage.
        For draining a stage, and for tests that need a batch of known size."""
        with self._lock:
            self._held += 1
        try:
            yield
        finally:
            with self._lock:
                self._held -= 1
                self._free.notify_all()

    def close(self) -> None:
        """Nothing to stop: the stage runs in its callers' threads."""

    # --- the executor (runs in the leading caller's thread) ----------------------------
    def _call(self, items: list[T]) -> list[R]:
        out = self._run(items)
        if len(out) != len(items):
            raise RuntimeError(f"stage {self.stage} returned {len(out)} results for "
                               f"{len(items)} items")
        return out

    def _collect(self) -> list[_Request[T, R]]:
        """Queued requests for one call, oldest first (caller holds the lock)."""
        if self.max_wait_s > 0 and self._expect is not None:
            deadline = time.monotonic() + self.max_wait_s
            while (self._waiting < self.max_batch and self._expect() > len(self._queue)
                   and (left := deadline - time.monotonic()) > 0):
                self._arrived.wait(left)
        batch: list[_Request[T, R]] = []
        n = 0
        while self._queue and (not batch or n + len(self._queue[0].items) <= self.max_batch):
            r = self._queue.popleft()
            batch.append(r)
            n += len(r.items)
        self._waiting -= n
        return batch

    def _execute(self, batch: list[_Request[T, R]]) -> None:
        items = [item for r in batch for item in r.items]
        started = time.monotonic()
        try:
            out = self._call(items)
        except BaseException as exc:  # noqa: BLE001 (handed to the callers)
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
            else:  # each alone: a bad input fails only its own request
                for r in batch:
                    self._execute_alone(r)
            return
        finally:
            self._tell(len(items), [started - r.queued_at for r in batch])
        at = 0
        for r in batch:
            r.future.set_result(out[at:at + len(r.items)])
            at += len(r.items)

    def _execute_alone(self, request: _Request[T, R]) -> None:
        try:
            request.future.set_result(self._call(request.items))
        except BaseException as exc:  # noqa: BLE001
            request.future.set_exception(exc)

    def _tell(self, size: int, waits: list[float]) -> None:
        for listener in self.listeners:
            try:
                listener(self.stage, size, waits)
            except Exception:  # a metrics bug must not fail queries
                log.exception("batch listener failed")
