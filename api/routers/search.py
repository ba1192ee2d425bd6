"""``POST /v1/search``: hybrid retrieval without generation."""

from __future__ import annotations

from fastapi import APIRouter

from api import schemas as s
from api.deps import PrincipalDep, ServiceDep
from api.errors import responses
from api.routers import V1

router = APIRouter(prefix=V1, tags=["search"])


@router.post("/search", responses=responses(400, 404, 413, 415, 422, 429))
async def search(
    body: s.SearchRequest, service: ServiceDep, principal: PrincipalDep
) -> s.SearchResponse:
    return await service.admitted(service.search, body, principal)
