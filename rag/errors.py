"""Typed errors. Every error a user can cause carries a message that says what to do next.

The core knows no HTTP: ``api/errors.py`` maps these classes to status codes in one
place; the CLI prints ``str(err)`` and exits non-zero. Library exceptions never leak
past the module that caught them.
"""

from __future__ import annotations


class MmragError(Exception):
    """Base class: anything mmrag raises on purpose."""


class ConfigError(MmragError):
    """Settings or a profile are invalid."""


class ModelUnavailable(MmragError):
    """A model's weights cannot be found locally and cannot be downloaded here."""


class BadInput(MmragError):
    """A request or file is malformed; the caller can fix it."""


class UnsupportedFile(BadInput):
    """A file type mmrag does not read."""


class FileRejected(BadInput):
    """A file that is corrupt, truncated, empty or over a limit."""


class LimitExceeded(BadInput):
    """A size, pixel, page or count limit from settings was exceeded."""


class FileChanged(BadInput):
    """A file changed on disk while it was being ingested (its hash no longer matches)."""


class NotFound(MmragError):
    """A collection, document, job or media item does not exist."""


class Conflict(MmragError):
    """The request clashes with stored state (e.g. vector sizes of an existing collection)."""


class Unauthorized(MmragError):
    """No or an unknown API key."""


class Forbidden(MmragError):
    """A known key that may not do this."""


class UpstreamError(MmragError):
    """A remote model endpoint failed or answered with something unusable."""


def one_line(exc: BaseException) -> str:
    """A library exception's message on one line, to embed in ours."""
    return " ".join(str(exc).split()) or type(exc).__name__


class NotReady(MmragError):
    """The server is up but cannot serve yet (models loading, store unreachable)."""


class Busy(MmragError):
    """A capacity limit is reached right now (uploads in flight, spooled bytes waiting
    for their jobs); the same request can succeed later. ``retry_after_s`` is the wait
    the surfaces suggest (HTTP's ``Retry-After``, a tool error's text)."""

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
