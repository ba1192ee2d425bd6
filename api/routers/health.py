"""``/healthz`` (the process answers), ``/readyz`` (it can serve), ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api import schemas as s
from api.deps import MetricsDep, PrincipalDep, ServiceDep
from api.errors import responses

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model_exclude_none=True)
async def healthz() -> s.Health:
    """Answered on the event loop itself (no thread-pool hop): it says the loop turns."""
    return s.Health(status="ok")


@router.get("/readyz", responses=responses(503))
def readyz(service: ServiceDep) -> s.Health:
    """Ready once the models are loaded (the lifespan finished) and the store answers;
    before that the service dependency itself answers 503."""
    return service.ready()


@router.get("/metrics", response_class=Response, responses=responses(401, 403, 503))
def metrics(principal: PrincipalDep, service: ServiceDep, registry: MetricsDep) -> Response:
    """Prometheus text format; needs a key scoped to all collections when keys are set."""
    service.check_metrics_access(principal)
    body, content_type = registry.render()
    return Response(body, media_type=content_type)
