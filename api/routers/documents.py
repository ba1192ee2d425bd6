"""``/v1/collections/{name}/documents``: upload (as a background job), list, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from api import schemas as s
from api.deps import PrincipalDep, ServiceDep
from api.errors import responses
from api.routers import V1

router = APIRouter(prefix=V1, tags=["documents"])

# The body is parsed by hand (streaming, with limits), so FastAPI cannot infer its
# schema; this describes it for /docs and generated clients.
_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                        },
                        "metadata": {
                            "type": "string",
                            "description": "a JSON object applied to every file",
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "/collections/{name}/documents",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=_UPLOAD_BODY,
    responses=responses(400, 404, 413, 415, 422, 429),
)
async def upload_documents(
    name: str, request: Request, response: Response, service: ServiceDep, principal: PrincipalDep
) -> s.Job:
    """Accept files and ingest them in the background; poll the returned job.

    Files are stored as ``upload/<name>``, keeping Unicode and relative folders
    (``q1/report.txt``); names that cannot be kept safely are refused (400)."""
    length = request.headers.get("content-length", "").strip()
    job = await service.receive_upload(
        name,
        request.headers.get("content-type"),
        int(length) if length.isdigit() else None,
        request.stream(),
        principal,
    )
    response.headers["Location"] = job.url
    return job


@router.post(
    "/collections/{name}/ingest",
    status_code=status.HTTP_202_ACCEPTED,
    include_in_schema=False,  # the local CLI's route (server.json token), not a public API
)
def ingest_paths(
    name: str, body: s.PathIngest, response: Response, service: ServiceDep,
    principal: PrincipalDep,
) -> s.Job:
    job = service.ingest_paths(name, body, principal)
    response.headers["Location"] = job.url
    return job


@router.get("/collections/{name}/documents", responses=responses(404, 422))
def list_documents(name: str, service: ServiceDep, principal: PrincipalDep) -> s.DocumentList:
    return service.list_documents(name, principal)


@router.delete("/collections/{name}/documents", responses=responses(404, 422))
def delete_document(
    name: str,
    source: Annotated[str, Query(min_length=1, description="the stored source name")],
    service: ServiceDep,
    principal: PrincipalDep,
) -> s.Deleted:
    return service.delete_document(name, source, principal)
