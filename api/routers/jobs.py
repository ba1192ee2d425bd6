"""``/v1/jobs/{id}``: upload job state, polled or followed as server-sent events."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api import schemas as s
from api import sse
from api.deps import PrincipalDep, ServiceDep
from api.errors import responses
from api.routers import V1

router = APIRouter(prefix=V1, tags=["jobs"])


@router.get("/jobs/{job_id}", responses=responses(404, 422))
def get_job(job_id: str, service: ServiceDep, principal: PrincipalDep) -> s.Job:
    return service.get_job(job_id, principal)


@router.get(
    "/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **responses(404, 422)},
)
async def job_events(
    job_id: str, service: ServiceDep, principal: PrincipalDep
) -> StreamingResponse:
    """``progress`` events as files finish, then one ``done`` event; the stream ends."""
    await run_in_threadpool(service.get_job, job_id, principal)  # 404 before the stream
    return sse.job_stream(service.job_events(job_id, principal))
