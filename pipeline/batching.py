"""Micro-batching: concurrent callers' small jobs merged into one call on one thread.

Why: a server answering many clients at once otherwise runs one model call per request
on as many threads as there are requests. Each call pays the model's fixed costs alone,
every call's inference threads compete for the same cores, and the threads take turns
at the GIL. An embedding server that batches (text-embeddings-inference, vLLM) does the
opposite: requests that arrive while the model is busy wait in a queue and go into the
next call together, so a busy server does more work per core, not less.

A :class:`Batcher` owns one worker thread (the stage's executor: one model call at a
time, so the model's own thread pool is the only one on the cores). Callers block in
:meth:`Batcher.submit` with a list of items; the worker takes whatever is queued (up to
``max_batch`` items), runs the stage function once over all of it and hands each caller
its own slice. A lone caller is run at once, so batching costs it one thread hand-off;
``max_wait_s`` lets the worker wait a little for more work only while ``expect()`` says
other queries are in flight. If a merged call fails, each caller's items run again
alone, so one bad input fails only its own request.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
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
    """One stage's queue and its executor thread; see the module docstring."""

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
        self._queue: queue.SimpleQueue[_Request[T, R] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._waiting = 0  # items queued, not yet in a call

    @property
    def depth(self) -> int:
        """Items waiting for the stage (not counting the call under way)."""
        return self._waiting

    def submit(self, items: list[T]) -> list[R]:
        """Run ``items`` through the stage (with whatever else is queued); blocks."""
        if not items:
            return []
        if self._closed or threading.current_thread() is self._thread:
            return self._call(items)  # closed, or a stage calling itself: no hand-off
        request: _Request[T, R] = _Request(items, time.monotonic())
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, daemon=True,
                                                name=f"batch-{self.stage}")
                self._thread.start()
            self._waiting += len(items)
        self._queue.put(request)
        return request.future.result()

    def close(self) -> None:
        """Stop the worker after the queued work; later submits run in the caller."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            if thread is not threading.current_thread():
                thread.join(timeout=30)

    # --- the worker -------------------------------------------------------------------
    def _call(self, items: list[T]) -> list[R]:
        out = self._run(items)
        if len(out) != len(items):
            raise RuntimeError(f"stage {self.stage} returned {len(out)} results for "
                               f"{len(items)} items")
        return out

    def _more_expected(self, have: int) -> bool:
        return self._expect is not None and self._expect() > have

    def _collect(self, first: _Request[T, R]) -> tuple[list[_Request[T, R]], bool]:
        batch, n = [first], len(first.items)
        deadline = time.monotonic() + self.max_wait_s
        while n < self.max_batch:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0 or not self._more_expected(len(batch)):
                    break
                try:
                    nxt = self._queue.get(timeout=left)
                except queue.Empty:
                    break
            if nxt is None:
                return batch, True
            if n + len(nxt.items) > self.max_batch:
                self._queue.put(nxt)  # whole requests only; it leads the next call
                break
            batch.append(nxt)
            n += len(nxt.items)
        return batch, False

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._collect(first)
            self._execute(batch)
            if stop:
                return

    def _execute(self, batch: list[_Request[T, R]]) -> None:
        items = [item for r in batch for item in r.items]
        started = time.monotonic()
        with self._lock:
            self._waiting -= len(items)
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
