"""Request body caps, answered before the body is read.

FastAPI reads a JSON body completely before validating it, so without a cap a client
could make the server buffer gigabytes. The app also sets FastAPI's own
``max_body_size`` (which counts bytes as they arrive, so it catches chunked bodies too);
this middleware exists to refuse an oversized ``Content-Length`` up front with our JSON
error and a message that names the limit, where Starlette would answer in plain text.
Multipart uploads get a larger cap (files x per-file limit); their per-file limits are
enforced while parsing (:mod:`api.uploads`), and all uploads together share one
:class:`UploadBudget` of bytes in flight.
"""

from __future__ import annotations

import json
import threading

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import Busy, error_payload
from rag.errors import LimitExceeded

# Room for multipart boundaries, part headers and the metadata field.
MULTIPART_OVERHEAD = 1024 * 1024


def upload_body_limit(max_file_bytes: int, max_files: int) -> int:
    return max_files * (max_file_bytes + 16 * 1024) + MULTIPART_OVERHEAD


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, json_bytes: int, multipart_bytes: int) -> None:
        self.app = app
        self.json_bytes = json_bytes
        self.multipart_bytes = multipart_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            ctype = headers.get(b"content-type", b"").decode("latin-1").lower()
            length = headers.get(b"content-length", b"").decode("latin-1").strip()
            multipart = ctype.startswith("multipart/")
            limit = self.multipart_bytes if multipart else self.json_bytes
            if length.isdigit() and int(length) > limit:
                what = "an upload" if multipart else "a JSON request"
                await _reject(
                    send, f"the request body is {int(length):,} bytes; the limit for {what} "
                    f"is {limit:,}"
                )
                return
        await self.app(scope, receive, send)


async def _reject(send: Send, message: str) -> None:
    body = json.dumps(error_payload(413, message, "limit_exceeded")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class UploadBudget:
    """The server-wide cap on upload bytes being received at once
    (``api.max_inflight_upload_bytes``).

    Each upload takes a :class:`UploadLease`: its declared ``Content-Length`` up front
    when there is one (a request that cannot fit is refused before a byte is read), else
    its bytes as they stream in. Bytes are given back when the request ends, stored or
    refused: once spooled and handed to a job they are on disk, not in flight. Memory
    per upload is bounded by the streaming parser; this bounds the number of uploads
    the disk and the parser threads serve at once, and tells clients to come back.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self._lock = threading.Lock()

    def lease(self, declared: int | None = None) -> UploadLease:
        lease = UploadLease(self)
        if declared is not None:
            lease.take(declared)
            lease.declared = True
        return lease

    def _take(self, n: int, held: int) -> None:
        with self._lock:
            if held + n > self.limit:
                raise LimitExceeded(
                    f"this upload is over {held + n:,} bytes; the server receives at most "
                    f"{self.limit:,} bytes of uploads at once (api.max_inflight_upload_bytes): "
                    "split it into smaller requests"
                )
            if self.in_flight + n > self.limit:
                raise Busy(
                    f"the server is receiving {self.in_flight:,} bytes of other uploads; "
                    f"with this one it would pass its limit of {self.limit:,} "
                    "(api.max_inflight_upload_bytes). Retry in a few seconds"
                )
            self.in_flight += n

    def _give(self, n: int) -> None:
        with self._lock:
            self.in_flight -= n


class UploadLease:
    """One request's share of the :class:`UploadBudget`; release it exactly once."""

    def __init__(self, budget: UploadBudget) -> None:
        self.budget = budget
        self.held = 0
        self.declared = False

    def take(self, n: int) -> None:
        self.budget._take(n, self.held)
        self.held += n

    def on_chunk(self, n: int) -> None:
        """Count streamed bytes, unless the request declared its length up front."""
        if not self.declared:
            self.take(n)

    def release(self) -> None:
        self.budget._give(self.held)
        self.held = 0
