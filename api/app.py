"""The FastAPI app: ``create_app(settings)``.

The lifespan builds exactly one :class:`~pipeline.Pipeline`, loads its models before
the first request (a missing model fails start-up with its own message rather than the
first user's request), and keeps it and the service on ``app.state``. Nothing is global,
so tests and embedding applications can run several apps side by side.

Every ``/v1`` route sits behind the API-key dependency at the router level, so a new
route cannot forget it; ``/healthz`` and ``/readyz`` are open for orchestrators. The
whole app, those included, sits inside :mod:`api.security` (Host allowlist, cross-site
writes refused, CORS only for listed origins), added last so that it runs first.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from api import errors, security
from api.deps import get_principal
from api.limits import BodyLimitMiddleware, upload_body_limit
from api.media_links import MediaLinks
from api.metrics import Metrics, MetricsMiddleware
from api.routers import chat, collections, documents, health, jobs, media, models, page, search
from api.service import RagService
from pipeline import Pipeline
from pipeline.datadir import ensure_private_dir
from policy.principals import Authenticator
from policy.uploads import Uploads, json_body_limit
from rag.settings import Settings

log = logging.getLogger("mmrag.api")

def _start(settings: Settings, metrics: Metrics, uploads: Uploads, links: MediaLinks
           ) -> RagService:
    """Build the pipeline, warm every stage (blocking: models load) and resume the
    ingest jobs a previous process left unfinished."""
    ensure_private_dir(settings.data_path)
    pipeline = Pipeline(settings)
    try:
        pipeline.load()
        pipeline.pin_store()  # the server is the embedded store's one user; the CLI asks it
        service = RagService(settings, pipeline, metrics, uploads, links)
        resumed = pipeline.resume_jobs()
        uploads.count_resumed(pipeline, resumed)  # their spools count against the bound
        for _ in resumed:
            metrics.jobs_running.inc()
        if resumed:
            log.info("resumed %d interrupted ingest job(s)", len(resumed))
        return service
    except BaseException:
        pipeline.close()
        raise


def create_app(
    settings: Settings,
    local_token: str | None = None,
    on_shutdown: Callable[[], None] | None = None,
) -> FastAPI:
    metrics = Metrics()
    # One upload budget for the server: the REST routes and MCP over HTTP share it.
    uploads = Uploads(settings.api)
    # Signed media links: issued by the service, checked by the key dependency (api.deps).
    links = MediaLinks.from_settings(settings.api)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await run_in_threadpool(_start, settings, metrics, uploads, links)
        app.state.service = service
        app.state.pipeline = service.pipeline
        log.info("mmrag API ready (profile %s, data in %s)", settings.profile, settings.data_path)
        try:
            yield
        finally:
            app.state.service = None
            await run_in_threadpool(service.close)
            if on_shutdown is not None:
                on_shutdown()

    json_limit = json_body_limit(settings)
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
    app.state.auth = Authenticator(settings.api, local_token)
    app.state.media_links = links
    app.state.metrics = metrics
    app.state.uploads = uploads
    app.state.service = None
    errors.install(app)

    app.add_middleware(BodyLimitMiddleware, json_bytes=json_limit, multipart_bytes=upload_limit)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    # The key check is attached here, to every /v1 router, so no route can miss it.
    keyed = [Depends(get_principal)]
    common = errors.responses(401, 403, 405, 503)
    for module in (chat, models, search, collections, jobs, media):
        app.include_router(module.router, dependencies=keyed, max_body_size=json_limit,
                           responses=common)
    app.include_router(documents.router, dependencies=keyed, max_body_size=upload_limit,
                       responses=common)
    app.include_router(health.router, max_body_size=json_limit)
    # The chat page and its static files: public (they hold no data; the page asks for a
    # key when the API answers 401).
    app.include_router(page.router)
    page.mount_static(app)
    # Last, so it runs first: a foreign Host or a cross-site write goes no further.
    security.install(app, settings.api)
    return app
