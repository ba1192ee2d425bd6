"""Typed errors. Every error a user can cause carries a message that says what to do next.

``api/`` maps these to HTTP status codes in one place; the CLI prints ``str(err)`` and
exits non-zero. Library exceptions never leak past the module that caught them.
"""

from __future__ import annotations


class MmragError(Exception):
    """Base class: anything mmrag raises on purpose."""

    status = 500  # HTTP status the API maps this to; subclasses override.


class ConfigError(MmragError):
    """Settings or a profile are invalid."""

    status = 500


class ModelUnavailable(MmragError):
    """A model's weights cannot be found locally and cannot be downloaded here."""

    status = 503


class BadInput(MmragError):
    """A request or file is malformed; the caller can fix it."""

    status = 400


class UnsupportedFile(BadInput):
    """A file type mmrag does not read."""

    status = 415


class FileRejected(BadInput):
    """A file that is corrupt, truncated, empty or over a limit."""

    status = 422


class LimitExceeded(BadInput):
    """A size, pixel, page or count limit from settings was exceeded."""

    status = 413


class NotFound(MmragError):
    """A collection, document, job or media item does not exist."""

    status = 404


class Conflict(MmragError):
    """The request clashes with stored state (e.g. vector sizes of an existing collection)."""

    status = 409


class Unauthorized(MmragError):
    status = 401


class Forbidden(MmragError):
    status = 403


class UpstreamError(MmragError):
    """A remote model endpoint failed or answered with something unusable."""

    status = 502


def one_line(exc: BaseException) -> str:
    """A library exception's message on one line, to embed in ours."""
    return " ".join(str(exc).split()) or type(exc).__name__
