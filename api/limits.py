"""Request body caps, answered before the body is read.

FastAPI reads a JSON body completely before validating it, so without a cap a client
could make the server buffer gigabytes. The app also sets FastAPI's own
``max_body_size`` (which counts bytes as they arrive, so it catches chunked bodies too);
this middleware exists to refuse an oversized ``Content-Length`` up front with our JSON
error and a message that names the limit, where Starlette would answer in plain text.
Multipart uploads get a larger cap (files x per-file limit); their per-file limits are
enforced while parsing (:mod:`api.uploads`), and all uploads together share the
budgets of :mod:`policy.uploads`.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_payload

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
