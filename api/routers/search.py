"""``POST /v1/search``: hybrid retrieval without generation."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api import schemas as s
from api.deps import PrincipalDep, ServiceDep
from api.errors import responses
from api.routers import V1, json_response

router = APIRouter(prefix=V1, tags=["search"])


@router.post("/search", response_model=s.SearchResponse,
             responses=responses(400, 404, 413, 415, 422, 429))
async def search(body: s.SearchRequest, service: ServiceDep, principal: PrincipalDep) -> Response:
    return json_response(await service.admitted(
        lambda: service.search(body, principal).model_dump_json()))
