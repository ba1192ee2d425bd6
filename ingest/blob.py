"""The bytes of one file to ingest, read where they are.

Documents (PDFs, pictures, text) are parsed from memory, so they are read whole and
bounded by ``ingest.max_file_bytes``. Videos and recordings are decoded as a stream
straight from the file (PyAV reads it a few KiB at a time) and copied to the media store
the same way, so a 4 GB recording is never in memory; they are bounded by
``video.max_file_bytes``. Which limit applies is decided from the first KiB
(:func:`ingest.loaders.admit`), before anything else is read.

A blob hashes itself in 1 MiB pieces. A file on disk may change while it is being
ingested (an editor saving, a download still running): a :class:`FileBlob` remembers
its size, modification time and inode when it is first opened, every later open checks
them, and the media store checks the hash of the original it copies, so a ``doc_id``
always names the bytes stored under it. A file that changed fails with a message that
says to ingest it again.

Blobs pickle small (a path, not the bytes), so worker processes and Ray tasks open the
file themselves.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from rag.errors import FileChanged, LimitExceeded, NotFound

PIECE = 1024 * 1024
HEAD = 1024  # what type detection looks at (the PDF header may follow 1 KiB of junk)


class Blob(abc.ABC):
    """One file's bytes: in memory, or in a file opened again for every pass."""

    name: str

    @property
    @abc.abstractmethod
    def size(self) -> int: ...

    @abc.abstractmethod
    def open(self) -> BinaryIO:
        """A fresh binary stream positioned at the start (the caller closes it)."""

    def head(self, n: int = HEAD) -> bytes:
        with self.open() as f:
            return f.read(n)

    def check_size(self, limit: int, setting: str) -> None:
        if self.size > limit:
            raise LimitExceeded(f"{self.name}: the file is {self.size:,} bytes; the limit is "
                                f"{limit:,} ({setting})")

    def read(self, max_bytes: int | None = None) -> bytes:
        """All the bytes, refusing a file over ``max_bytes`` before reading it."""
        if max_bytes is not None:
            self.check_size(max_bytes, "ingest.max_file_bytes")
        with self.open() as f:
            data = f.read()
        self.verify()
        return data

    def pieces(self) -> Iterator[bytes]:
        with self.open() as f:
            while piece := f.read(PIECE):
                yield piece

    def sha256(self) -> str:
        """Hex SHA-256 of the bytes (the ``doc_id``), read in 1 MiB pieces."""
        digest = hashlib.sha256()
        for piece in self.pieces():
            digest.update(piece)
        self.verify()
        return digest.hexdigest()

    def verify(self) -> None:  # noqa: B027 - bytes in memory cannot change
        """Raise :class:`FileChanged` if the file is no longer what was first seen."""


class MemoryBlob(Blob):
    """Bytes already in memory (an API upload read whole, a test's fixture)."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.data = data

    @property
    def size(self) -> int:
        return len(self.data)

    def open(self) -> BinaryIO:
        return io.BytesIO(self.data)

    def head(self, n: int = HEAD) -> bytes:
        return self.data[:n]

    def read(self, max_bytes: int | None = None) -> bytes:
        if max_bytes is not None:
            self.check_size(max_bytes, "ingest.max_file_bytes")
        return self.data


@dataclass(frozen=True)
class PathOpener:
    """Opens a path as given (a user's file: links are followed, as ``cat`` would), without
    blocking on a FIFO."""

    path: str

    def __call__(self) -> int:
        return os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))


_Signature = tuple[int, int, int, int]  # size, mtime_ns, inode, device


class FileBlob(Blob):
    """A regular file, opened through ``opener`` (a picklable callable returning a file
    descriptor) each time it is read; see the module docstring for change detection."""

    def __init__(self, name: str, opener: Callable[[], int]) -> None:
        self.name = name
        self.opener = opener
        self._seen: _Signature | None = None
        with self.open():  # fails now, by name, for a missing or odd file
            pass

    @classmethod
    def at(cls, name: str, path: str) -> FileBlob:
        return cls(name, PathOpener(path))

    @property
    def size(self) -> int:
        assert self._seen is not None
        return self._seen[0]

    def _fd(self) -> int:
        try:
            return self.opener()
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotFound(f"{self.name}: refused: the path is a symbolic link") from exc
            raise NotFound(f"{self.name}: cannot read ({exc.strerror or exc})") from exc

    def open(self) -> BinaryIO:
        fd = self._fd()
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NotFound(f"{self.name}: not a regular file (a folder, device or pipe)")
            os.set_blocking(fd, True)
            self._check((st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev))
            return os.fdopen(fd, "rb", buffering=PIECE)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise

    def verify(self) -> None:
        fd = self._fd()
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        self._check((st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev))

    def _check(self, now: _Signature) -> None:
        if self._seen is None:
            self._seen = now
        elif now != self._seen:
            raise FileChanged(
                f"{self.name}: the file changed while it was being ingested (its size, "
                "time or inode differ from when it was hashed); ingest it again once it "
                "is complete")


def as_blob(name: str, data: bytes | Blob) -> Blob:
    return data if isinstance(data, Blob) else MemoryBlob(name, data)
