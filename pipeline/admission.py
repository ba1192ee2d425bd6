"""Admission control: a bound on the queries (searches, chats) a process serves at once,
and on how many of them run at once.

Why a bound: past the point where the cores are busy, every extra concurrent query only
makes all of them slower; with no bound, latency grows with the number of clients until
they time out. Over ``api.max_queue`` a query is refused at once with
:class:`~rag.errors.Busy` (HTTP 429 with ``Retry-After``, an MCP tool error), which
costs the server next to nothing, and the client comes back later.

Why run slots: an admitted query's Python work (HTTP, hit conversion, reranking, the
store binding) holds the GIL. Thirty-two threads all runnable at once take turns at it,
the event loop among them, and each query is slow for all of them; so only
``api.query_workers`` admitted queries run at a time and the rest wait, blocked (no
GIL), in arrival order. Enough run at once for the batchers to merge their encodes and
store queries.

One :class:`Admission` is shared by every surface of a process (REST routes, MCP tools,
chat). :meth:`Admission.admit` takes a place without blocking (a surface's event loop
may call it, so that a query waiting for a thread counts too); :meth:`Admission.run`
takes a place if none is held and then a run slot, blocking: worker threads call it (the
pipeline's search and ask do). Context variables, which worker threads inherit from the
loop, keep a query from being counted twice.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextvars import ContextVar

from pipeline.batching import BatchListener
from rag.errors import Busy


class _Slots:
    """A counting semaphore that serves waiters in arrival order: a freed slot is handed
    to the oldest waiter, never taken by a thread that arrives (or comes back) just
    then, as ``threading.Semaphore`` allows; that let closed-loop clients starve others
    (a mean wait of 200 ms with a p50 of 60)."""

    def __init__(self, n: int) -> None:
        self._free = n
        self._waiters: deque[threading.Event] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            if self._free > 0 and not self._waiters:
                self._free -= 1
                return
            turn = threading.Event()
            self._waiters.append(turn)
        turn.wait()  # release() hands the slot over: nothing to take

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._free += 1


_HELD: ContextVar[bool] = ContextVar("mmrag_admitted", default=False)
_RUNNING: ContextVar[bool] = ContextVar("mmrag_running", default=False)


class Admission:
    def __init__(self, limit: int, workers: int = 0) -> None:
        #: Queries served at once at most; 0 or less: no bound.
        self.limit = limit
        #: Admitted queries running at once at most; 0 or less: no bound.
        self.workers = workers
        self._slots = _Slots(workers) if workers > 0 else None
        self._queued = 0
        self._lock = threading.Lock()
        self._in_flight = 0
        self.shed = 0
        self._done = 0
        self._since = time.monotonic()
        self._rate = 0.0  # queries finished per second, recently
        #: Told (stage "admission", 1, [seconds waited]) when a query gets its slot.
        self.on_wait: list[BatchListener] = []

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def queued(self) -> int:
        """Admitted queries waiting for a run slot."""
        return self._queued

    @contextlib.contextmanager
    def run(self) -> Iterator[None]:
        """A place (unless this context holds one) and a run slot, for the duration;
        blocks for the slot. Re-entrant. Tells ``on_wait`` how long the slot took."""
        with self.admit():
            if _RUNNING.get() or self._slots is None:
                yield
                return
            started = time.monotonic()
            with self._lock:
                self._queued += 1
            try:
                self._slots.acquire()
            finally:
                with self._lock:
                    self._queued -= 1
            for listener in self.on_wait:
                listener("admission", 1, [time.monotonic() - started])
            token = _RUNNING.set(True)
            try:
                yield
            finally:
                _RUNNING.reset(token)
                self._slots.release()

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold a place for the duration, or raise :class:`Busy` when none is free;
        never blocks."""
        if _HELD.get():
            yield
            return
        with self._lock:
            if 0 < self.limit <= self._in_flight:
                self.shed += 1
                wait = self._retry_after()
                raise Busy(
                    f"the server is answering {self._in_flight} queries, its limit "
                    f"(api.max_queue); retry in {wait} s", retry_after_s=wait)
            self._in_flight += 1
        token = _HELD.set(True)
        try:
            yield
        finally:
            _HELD.reset(token)
            with self._lock:
                self._in_flight -= 1
                self._finished()

    def _finished(self) -> None:
        self._done += 1
        now = time.monotonic()
        if now - self._since >= 1.0:
            self._rate = self._done / (now - self._since)
            self._done, self._since = 0, now

    def _retry_after(self) -> int:
        """Seconds until the queries ahead are likely done (whole seconds, at least 1:
        what ``Retry-After`` can say)."""
        if self._rate <= 0:
            return 1
        return max(1, math.ceil(self._in_flight / self._rate))
