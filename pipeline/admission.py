"""Admission control: a bound on the queries (searches, chats) a process serves at once.

Why: past the point where the cores are busy, every extra concurrent query only makes
all of them slower; with no bound, latency grows with the number of clients until they
time out. Over the bound a query is refused at once with :class:`~rag.errors.Busy`
(HTTP 429 with ``Retry-After``, an MCP tool error), which costs the server next to
nothing, and the client comes back later.

One :class:`Admission` is shared by every surface of a process (REST routes, MCP tools,
chat): a query holds a place from the moment a surface accepts it until its answer (or
a stream's first event) is ready. A surface may take the place early, before waiting for
a worker thread, so that waiting counts too; the pipeline's own methods then find the
place already held (a context variable, which worker threads inherit) and do not count
the query twice.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar

from rag.errors import Busy

_HELD: ContextVar[bool] = ContextVar("mmrag_admitted", default=False)


class Admission:
    def __init__(self, limit: int) -> None:
        #: Queries served at once at most; 0 or less: no bound.
        self.limit = limit
        self._lock = threading.Lock()
        self._in_flight = 0
        self.shed = 0
        self._done = 0
        self._since = time.monotonic()
        self._rate = 0.0  # queries finished per second, recently

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        """Hold a place for the duration, or raise :class:`Busy` when none is free."""
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
