"""FastAPI dependencies: the service and the caller, as ``Annotated`` aliases.

Both come from ``app.state`` (set by the lifespan in :mod:`api.app`), never from module
globals, so several apps with different settings can live in one process.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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


async def get_principal(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    auth: Authenticator = request.app.state.auth
    return auth.authenticate(request.headers.get("authorization"))


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


ServiceDep = Annotated[RagService, Depends(get_service)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
