"""Taking turns at an embedded store between processes.

Qdrant Edge (and qdrant-client's local path mode) let one process open a store folder
at a time. So that several ``mmrag`` commands can run at once on one data dir, each
process holds the folder only while it uses it: a :class:`StoreGate` is an exclusive
``flock`` on ``<data_dir>/store.lock``, taken around each store operation and released
(after closing the store's files) when the process is done with it. A search holds it
for milliseconds; an ingest holds it per file and, between files, hands it over to any
process that is waiting (waiters leave a marker under ``store.lock.wait/``). A server
pins it for its whole life, and CLI commands then go through the server instead.

With ``linger_s`` the store stays open after an operation until that much idle time has
passed or another process waits for it (a watcher thread looks every ``LINGER_POLL_S``),
so a process that searches again and again pays the shard's load once, while other
processes still get their turn within a poll.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.datadir import ensure_private_dir
from rag.errors import Conflict
from rag.process import process_alive

POLL_S = 0.02
LINGER_POLL_S = 0.05


class StoreGate:
    def __init__(
        self,
        lock_path: Path,
        release_store: Callable[[], None],
        timeout_s: float = 600.0,
        on_wait: Callable[[str], None] | None = None,
        linger_s: float = 0.0,
    ) -> None:
        self.lock_path = Path(lock_path)
        self.linger_s = linger_s
        self._idle_since = 0.0
        self._watcher: threading.Thread | None = None
        self._atexit = False
        self.wait_dir = self.lock_path.with_name(self.lock_path.name + ".wait")
        self.release_store = release_store
        self.timeout_s = timeout_s
        self.on_wait = on_wait
        self._guard = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pinned = False

    # --- holding ----------------------------------------------------------------------
    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """The store is this process's for the duration (re-entrant, thread-shared)."""
        with self._guard:
            if self._fd is None:
                self._acquire()
            self._depth += 1
        try:
            yield
        finally:
            with self._guard:
                self._depth -= 1
                if self._depth == 0 and not self._pinned:
                    if self.linger_s > 0:
                        self._linger()
                    else:
                        self._release()

    def _linger(self) -> None:
        """Keep the store while idle (caller holds ``_guard``); the watcher lets it go."""
        self._idle_since = time.monotonic()
        if not self._atexit:  # close the store's files cleanly at exit, flushed
            atexit.register(self.close)
            self._atexit = True
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, daemon=True,
                                             name="store-linger")
            self._watcher.start()

    def _watch(self) -> None:
        while True:
            time.sleep(LINGER_POLL_S)
            with self._guard:
                if self._fd is None or self._pinned:
                    self._watcher = None
                    return
                if self._depth == 0 and (
                    time.monotonic() - self._idle_since >= self.linger_s or self._waiters()
                ):
                    self._release()
                    self._watcher = None
                    return

    def pin(self) -> None:
        """Hold the store until :meth:`close` (a server: it serves everyone else)."""
        with self._guard:
            if self._fd is None:
                self._acquire()
            self._pinned = True

    def let_waiters_in(self) -> None:
        """Between two units of work: if another process waits, close the store, let
        it have a turn, and take the store back."""
        with self._guard:
            if self._pinned or self._fd is None or self._depth > 1 or not self._waiters():
                return
            self._release()
            time.sleep(POLL_S * 5)  # a waiter polls every POLL_S: give it the lock
            self._acquire()

    def close(self) -> None:
        with self._guard:
            self._pinned = False
            self._depth = 0
            if self._fd is not None:
                self._release()

    # --- internals --------------------------------------------------------------------
    def _holder(self) -> str:
        try:
            pid = self.lock_path.read_text().strip()
        except OSError:
            return "another process"
        return f"process {pid}" if pid else "another process"

    def _waiters(self) -> bool:
        try:
            entries = list(os.scandir(self.wait_dir))
        except FileNotFoundError:
            return False
        for entry in entries:
            try:
                pid = int(entry.name)
            except ValueError:
                continue
            if pid != os.getpid() and process_alive(pid):
                return True
            if not process_alive(pid):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
        return False

    def _acquire(self) -> None:
        ensure_private_dir(self.lock_path.parent)  # the data dir: often first created here
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        marker: Path | None = None
        deadline = time.monotonic() + self.timeout_s
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                if marker is None:
                    self.wait_dir.mkdir(parents=True, exist_ok=True)
                    marker = self.wait_dir / str(os.getpid())
                    marker.touch()
                    if self.on_wait is not None:
                        self.on_wait(f"waiting for {self._holder()} to finish with "
                                     f"{self.lock_path.parent}")
                if time.monotonic() > deadline:
                    raise Conflict(
                        f"the store in {self.lock_path.parent} is busy: {self._holder()} "
                        f"has held it for over {self.timeout_s:.0f} s. Wait for it, or run "
                        "`mmrag serve` so that every command shares one process"
                    )
                time.sleep(POLL_S)
        except BaseException:
            os.close(fd)
            raise
        finally:
            if marker is not None:
                with contextlib.suppress(OSError):
                    marker.unlink()
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def _release(self) -> None:
        fd, self._fd = self._fd, None
        try:
            self.release_store()
        finally:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


class NoGate:
    """For stores that serve many processes themselves (a Qdrant server)."""

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        yield

    def pin(self) -> None:
        pass

    def let_waiters_in(self) -> None:
        pass

    def close(self) -> None:
        pass
