"""FastAPI dependencies: the service and the caller, as ``Annotated`` aliases.

Both come from ``app.state`` (set by the lifespan in :mod:`api.app`), never from module
globals, so several apps with different settings can live in one process.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.media_links import MediaLinks, is_signed
from api.metrics import Metrics
from api.service import RagService
from policy.principals import Authenticator, Principal
from rag.errors import NotReady

# Declared for the OpenAPI schema ("Authorize" in /docs); the raw header is what we check,
# so a malformed one gets our message rather than FastAPI's.
_bearer = HTTPBearer(auto_error=False, description="an API key from api.api_keys")


async def get_service(request: Request) -> RagService:
    service: RagService | None = getattr(request.app.state, "service", None)
    if service is None:
        raise NotReady("the server is starting: models are still loading")
    return service


# The routes `mmrag` commands call through a running server (cli/remote.py), by method
# and path template: the only ones where the server's local token (server.json) counts.
# Elsewhere (metrics, creating collections, MCP, uploads) it is just a wrong key.
LOCAL_TOKEN_ROUTES: frozenset[tuple[str, str]] = frozenset({
    ("POST", "/v1/search"),
    ("POST", "/v1/chat/completions"),
    ("GET", "/v1/collections"),
    ("DELETE", "/v1/collections/{name}"),
    ("GET", "/v1/collections/{name}/documents"),
    ("DELETE", "/v1/collections/{name}/documents"),
    ("POST", "/v1/collections/{name}/ingest"),
    ("GET", "/v1/jobs/{job_id}"),
    ("GET", "/v1/jobs/{job_id}/events"),
})


# The one route a signed media link (api/media_links.py) opens: reading the media file
# it was issued for. Everywhere else its query parameters are just unknown parameters.
SIGNED_LINK_ROUTE = "/v1/media/{key}"


def is_local_token_route(request: Request) -> bool:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return (request.method, path) in LOCAL_TOKEN_ROUTES


def is_signed_link_request(request: Request) -> bool:
    """A read of the signed-link route that carries a link's parameters: judged by the
    signature alone (an ``Authorization`` header beside it is not consulted)."""
    route = request.scope.get("route")
    return (request.method == "GET"
            and getattr(route, "path", None) == SIGNED_LINK_ROUTE
            and is_signed(request.query_params))


async def get_principal(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    auth: Authenticator = request.app.state.auth
    if is_signed_link_request(request):
        links: MediaLinks = request.app.state.media_links
        return links.verify(request.path_params["key"], request.query_params, auth.by_key_id)
    authorization = request.headers.get("authorization")
    if is_local_token_route(request):
        client = request.scope.get("client")
        local = auth.authenticate_local(authorization, client[0] if client else None)
        if local is not None:
            return local
    return auth.authenticate(authorization)


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


ServiceDep = Annotated[RagService, Depends(get_service)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
