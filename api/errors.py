"""Errors to HTTP, in one place, in the shape OpenAI clients already parse.

Every failure the API returns is ``{"error": {"message", "type", "code", "param"}}``:
the openai SDK and LangChain turn exactly that into a readable exception, so a user of
those clients sees our message ("collection 'x' does not exist ...") rather than a
generic status line. The status of each error class is decided here alone
(:data:`STATUS`, most specific class first), so ``rag/``, ``ingest/`` and ``pipeline/``
raise typed errors without knowing HTTP exists.

Bad input never becomes a 500: malformed JSON is a 400, a body that parses but does not
fit the schema is a 422, and only a bug reaches the catch-all (logged, message generic).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from rag.errors import (
    BadInput,
    Busy,
    ConfigError,
    Conflict,
    FileRejected,
    Forbidden,
    LimitExceeded,
    MmragError,
    ModelUnavailable,
    NotFound,
    NotReady,
    Unauthorized,
    UnsupportedFile,
    UpstreamError,
)

log = logging.getLogger("mmrag.api")

# OpenAI's error ``type`` vocabulary, by status; clients branch on these.
_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "service_unavailable_error",
}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


# Error class -> HTTP status, most specific first (subclasses before their bases).
STATUS: tuple[tuple[type[MmragError], int], ...] = (
    (UnsupportedFile, 415),
    (FileRejected, 422),
    (LimitExceeded, 413),
    (BadInput, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Busy, 429),
    (UpstreamError, 502),
    (ModelUnavailable, 503),
    (NotReady, 503),
    (ConfigError, 500),
)


def status_of(exc: BaseException) -> int:
    """The HTTP status of one of our errors; 500 for anything else."""
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_type(status: int) -> str:
    return _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def error_code(exc: BaseException) -> str:
    """``LimitExceeded`` -> ``limit_exceeded``: stable, greppable, documented by the class."""
    return _CAMEL.sub("_", type(exc).__name__).lower()


def error_payload(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": error_type(status), "code": code, "param": param}
    }


RETRY_AFTER_S = 5


def error_response(
    status: int,
    message: str,
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    extra = dict(headers or {})
    if status == 401:
        extra.setdefault("WWW-Authenticate", "Bearer")
    elif status == 429:
        extra.setdefault("Retry-After", str(RETRY_AFTER_S))
    return JSONResponse(error_payload(status, message, code, param), status,
                        headers=extra or None)


def retry_after(exc: BaseException) -> dict[str, str] | None:
    """``Retry-After`` for a :class:`~rag.errors.Busy` that says how long to wait."""
    if isinstance(exc, Busy):
        return {"Retry-After": str(max(1, int(exc.retry_after_s)))}
    return None


def allowed_methods(app: Any, scope: Scope) -> list[str]:
    """Every method some route serves at this path: Starlette's own 405 names only the
    first route that matched the path (``GET`` for ``PUT /v1/collections``, though
    ``POST`` is allowed too)."""
    methods: set[str] = set()
    for route in _flat(getattr(app, "routes", [])):
        match, _ = route.matches(scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _flat(routes: Sequence[Any]) -> Iterator[Any]:
    """Routes, with included routers (FastAPI keeps them as one entry each) opened up."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _flat(inner.routes)
        else:
            yield route


class ErrorBody(BaseModel):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx response (OpenAI's error shape)."""

    error: ErrorBody


_DESCRIPTIONS = {
    400: "bad input: the message says what is wrong",
    401: "missing or unknown API key",
    403: "this API key may not do that",
    404: "no such collection, document, job or media (or not visible to this key)",
    405: "method not allowed here; the Allow header lists the ones that are",
    409: "conflict with the stored state",
    413: "over a size limit (body, file, files per request, image pixels)",
    415: "unsupported media type",
    502: "the generator (a remote model server) failed or is unreachable",
    422: "the request does not fit the schema, or a file could not be read",
    429: "the server is at a capacity limit; retry after Retry-After seconds",
    503: "not ready: models still loading or the store unreachable",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route returns, all in the error
    shape, so generated clients and /docs know them."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorResponse, "description": _DESCRIPTIONS[status]}
        if status == 405:
            entry["headers"] = {"Allow": {"schema": {"type": "string"},
                                          "description": "the methods this path serves"}}
        elif status == 429:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                "description": "seconds to wait"}}
        out[status] = entry
    return out


def payload_for(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Status and body for an exception raised where no handler can run (inside a stream)."""
    if isinstance(exc, MmragError):
        status = status_of(exc)
        return status, error_payload(status, str(exc), error_code(exc))
    log.exception("unexpected error while streaming", exc_info=exc)
    return 500, error_payload(500, "internal server error; see the server log", "internal_error")


def _loc(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def describe_validation(errors: Sequence[dict[str, Any]]) -> tuple[int, str, str, str | None]:
    """(status, message, code, param) for FastAPI's validation errors.

    Unparseable JSON is a 400 (the client sent something that is not JSON at all);
    JSON of the wrong shape is a 422 listing every field that is wrong, because fixing
    one field at a time against a server is tedious.
    """
    for err in errors:
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error") or err.get("msg", "")
            return 400, f"the request body is not valid JSON ({detail})", "invalid_json", None
    parts = []
    for err in errors[:10]:
        parts.append(f"{_loc(err.get('loc', ()))}: {err.get('msg', 'invalid')}")
    first = _loc(errors[0].get("loc", ())) if errors else None
    more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
    return 422, "invalid request: " + "; ".join(parts) + more, "validation_error", first


def install(app: FastAPI) -> None:
    """Register the handlers; called once by :func:`api.app.create_app`."""

    async def on_mmrag(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MmragError)
        status = status_of(exc)
        if status >= 500:
            log.error("%s: %s", type(exc).__name__, exc)
        return error_response(status, str(exc), error_code(exc), headers=retry_after(exc))

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        status, message, code, param = describe_validation(list(exc.errors()))
        return error_response(status, message, code, param)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        message, code = str(exc.detail), "http_error"
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint; see /docs for the API"
        elif exc.status_code == 405:
            allow = allowed_methods(request.app, request.scope) or [headers.get("Allow", "")]
            headers["Allow"] = ", ".join(allow)
            message = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
            code = "method_not_allowed"
        elif exc.status_code == 413:
            message = "the request body is over the size limit for this endpoint"
            code = "limit_exceeded"
        return error_response(exc.status_code, message, code, headers=headers)

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal server error; see the server log", "internal_error")

    app.add_exception_handler(MmragError, on_mmrag)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
