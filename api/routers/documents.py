"""``/v1/collections/{name}/documents``: upload (as a background job), list, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from api import schemas as s
from api.deps import PrincipalDep, ServiceDep
from api.routers import V1
from api.uploads import read_upload

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
)
async def upload_documents(
    name: str, request: Request, response: Response, service: ServiceDep, principal: PrincipalDep
) -> s.Job:
    """Accept files and ingest them in the background; poll the returned job."""
    service.check_upload(name, principal)
    api = service.settings.api
    form = await read_upload(
        request.headers.get("content-type"),
        request.stream(),
        max_file_bytes=api.max_upload_bytes,
        max_files=api.max_files_per_request,
    )
    job = await run_in_threadpool(service.upload, name, form, principal)
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


@router.get("/collections/{name}/documents")
def list_documents(name: str, service: ServiceDep, principal: PrincipalDep) -> s.DocumentList:
    return service.list_documents(name, principal)


@router.delete("/collections/{name}/documents")
def delete_document(
    name: str,
    source: Annotated[str, Query(min_length=1, description="the stored source name")],
    service: ServiceDep,
    principal: PrincipalDep,
) -> s.Deleted:
    return service.delete_document(name, source, principal)
