"""``/v1/collections``: create, list and drop collections."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api import schemas as s
from api.deps import PrincipalDep, ServiceDep
from api.errors import responses
from api.routers import V1

router = APIRouter(prefix=V1, tags=["collections"])


@router.post(
    "/collections",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": s.CollectionInfo, "description": "already existed"},
               **responses(400, 409, 422)},
)
def create_collection(
    body: s.CollectionCreate, response: Response, service: ServiceDep, principal: PrincipalDep
) -> s.CollectionInfo:
    """Idempotent: 201 when created, 200 when it already existed with the same vectors."""
    info = service.create_collection(body, principal)
    if not info.created:
        response.status_code = status.HTTP_200_OK
    return info


@router.get("/collections")
def list_collections(service: ServiceDep, principal: PrincipalDep) -> s.CollectionList:
    return service.list_collections(principal)


@router.delete("/collections/{name}", responses=responses(404, 422))
def drop_collection(name: str, service: ServiceDep, principal: PrincipalDep) -> s.Deleted:
    return service.drop_collection(name, principal)
