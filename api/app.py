"""The FastAPI app: ``create_app(settings)``.

The lifespan builds exactly one :class:`~rag.pipeline.Pipeline`, loads its models before
the first request (a missing model fails start-up with its own message rather than the
first user's request), and keeps it and the service on ``app.state``. Nothing is global,
so tests and embedding applications can run several apps side by side.

Every ``/v1`` route sits behind the API-key dependency at the router level, so a new
route cannot forget it; ``/healthz`` and ``/readyz`` are open for orchestrators.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from api import errors
from api.auth import Authenticator
from api.deps import get_principal
from api.errors import NotReady
from api.images import ImagePolicy
from api.limits import BodyLimitMiddleware, upload_body_limit
from api.metrics import Metrics, MetricsMiddleware
from api.routers import chat, collections, documents, health, jobs, media, models, page, search
from api.service import RagService
from ingest.runner import JobStore
from mcpserver.http import PATH as MCP_PATH
from mcpserver.http import McpEndpoint
from rag.settings import Settings

if TYPE_CHECKING:
    from rag.pipeline import Pipeline

log = logging.getLogger("mmrag.api")

# JSON bodies carry at most one base64 image (4/3 of its size) plus the conversation.
_JSON_OVERHEAD = 2 * 1024 * 1024


def _start(settings: Settings, metrics: Metrics) -> RagService:
    """Build the pipeline and warm every stage it will use (blocking: models load)."""
    from rag.pipeline import Pipeline

    pipeline = Pipeline(settings)
    try:
        pipeline.load()
        # Build the lazily-created stages now, in one thread, rather than racing to
        # build them in the first concurrent requests.
        _ = pipeline.store, pipeline.media, pipeline.retriever, pipeline.runner
        pipeline.generator.load()
        return RagService(settings, pipeline, JobStore(settings.data_path / "jobs"), metrics)
    except BaseException:
        pipeline.close()
        raise


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await run_in_threadpool(_start, settings, metrics)
        app.state.service = service
        app.state.pipeline = service.pipeline
        log.info("mmrag API ready (profile %s, data in %s)", settings.profile, settings.data_path)
        try:
            async with mcp.run():
                yield
        finally:
            app.state.service = None
            await run_in_threadpool(service.close)

    json_limit = ImagePolicy.from_settings(settings).max_bytes * 4 // 3 + _JSON_OVERHEAD
    upload_limit = upload_body_limit(
        settings.api.max_upload_bytes, settings.api.max_files_per_request
    )
    app = FastAPI(
        title="mmrag",
        summary="Multimodal RAG: answers with citations behind an OpenAI-compatible API",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.auth = Authenticator(settings.api)
    app.state.metrics = metrics
    app.state.service = None
    errors.install(app)

    def pipeline() -> Pipeline:
        service: RagService | None = app.state.service
        if service is None:
            raise NotReady("the server is starting: models are still loading")
        return service.pipeline

    # MCP over streamable HTTP: the same keys and scopes, checked by the endpoint itself.
    mcp = McpEndpoint(pipeline, settings, app.state.auth, json_limit)
    app.router.routes.append(Route(MCP_PATH, mcp, methods=["GET", "POST", "DELETE"],
                                   include_in_schema=False))

    app.add_middleware(BodyLimitMiddleware, json_bytes=json_limit, multipart_bytes=upload_limit)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    # The key check is attached here, to every /v1 router, so no route can miss it.
    keyed = [Depends(get_principal)]
    for module in (chat, models, search, collections, jobs, media):
        app.include_router(module.router, dependencies=keyed, max_body_size=json_limit)
    app.include_router(documents.router, dependencies=keyed, max_body_size=upload_limit)
    app.include_router(health.router, max_body_size=json_limit)
    # The chat page and its static files: public (they hold no data; the page asks for a
    # key when the API answers 401).
    app.include_router(page.router)
    page.mount_static(app)
    return app
