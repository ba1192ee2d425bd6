"""MCP over streamable HTTP: the ASGI endpoint served at ``/mcp`` behind the API keys.

The HTTP app mounts it (:func:`api.mcp.mount`; ``mmrag serve`` does); this package
needs nothing from ``api/``: keys, scopes and upload budgets come from :mod:`policy`.

Every HTTP request to ``/mcp`` passes :class:`~policy.principals.Authenticator` first: a
missing or wrong key is a 401 before the SDK sees the body. The caller's
:class:`~policy.principals.Principal` travels in the ASGI scope to the tools
(:data:`~mcpserver.server.PRINCIPAL_SCOPE_KEY`), which apply the same collection
scopes as the REST routes; it is also presented to the SDK as the authenticated user,
so an MCP session opened with one key cannot be continued with another.

With no keys configured the server only ever binds to loopback (``cli/serve.py``); then
the SDK's DNS-rebinding protection is on (Host and Origin must be loopback), so a web
page in the user's browser cannot drive the keyless endpoint either.
"""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from mcpserver.server import PRINCIPAL_SCOPE_KEY, PipelineFn, build_server
from policy.principals import Authenticator
from policy.uploads import Uploads
from rag.errors import Unauthorized
from rag.settings import Settings

PATH = "/mcp"

_LOOPBACK = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"],
    allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
)
_KEYED = TransportSecuritySettings(enable_dns_rebinding_protection=False)


class McpEndpoint:
    """The ASGI app served at ``/mcp``; :meth:`run` must be entered in the app's lifespan."""

    def __init__(
        self,
        pipeline: PipelineFn,
        settings: Settings,
        auth: Authenticator,
        max_body_bytes: int,
        uploads: Uploads,
    ) -> None:
        self.auth = auth
        self.server = build_server(pipeline, settings, "http", uploads=uploads)
        self._app = self.server.streamable_http_app(
            streamable_http_path=PATH,
            max_request_body_size=max_body_bytes,
            transport_security=_KEYED if auth.enabled else _LOOPBACK,
        )

    def run(self) -> AbstractAsyncContextManager[None]:
        """The session manager's task group: sessions live inside it."""
        return self.server.session_manager.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"authorization")
        try:
            principal = self.auth.authenticate(raw.decode("latin-1") if raw else None)
        except Unauthorized as exc:
            await _unauthorized(send, str(exc))
            return
        user = AuthenticatedUser(AccessToken(
            token="", client_id=principal.key_id or "loopback", scopes=[],
        ))
        scope = {**scope, PRINCIPAL_SCOPE_KEY: principal, "user": user}
        await self._app(scope, receive, send)


async def _unauthorized(send: Send, message: str) -> None:
    # The API's error shape (OpenAI's), which HTTP clients of /mcp already parse.
    body = json.dumps({"error": {"message": message, "type": "authentication_error",
                                 "code": "invalid_api_key", "param": None}}).encode()
    start: dict[str, Any] = {
        "type": "http.response.start",
        "status": 401,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b"Bearer"),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
