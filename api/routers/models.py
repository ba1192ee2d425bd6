"""``GET /v1/models``: the collections this key can ask, as OpenAI models."""

from __future__ import annotations

from fastapi import APIRouter

from api import schemas as s
from api.deps import PrincipalDep, ServiceDep
from api.errors import responses
from api.routers import V1

router = APIRouter(prefix=V1, tags=["models"])


@router.get("/models")
def list_models(service: ServiceDep, principal: PrincipalDep) -> s.ModelList:
    return service.list_models(principal)


@router.get("/models/{model}", responses=responses(404, 422))
def get_model(model: str, service: ServiceDep, principal: PrincipalDep) -> s.ModelCard:
    return service.get_model(model, principal)
