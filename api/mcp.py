"""MCP at ``/mcp`` of the API app: the mount belongs to the HTTP surface (its routes,
its keys, its lifespan); the endpoint and the tools are :mod:`mcpserver`'s.

:func:`mount` adds it to an app from :func:`api.app.create_app` (``mmrag serve`` does).
The endpoint gets the app's authenticator, JSON body cap and upload budget, so MCP over
HTTP answers to the same keys and shares one upload budget with the REST routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from mcpserver.http import PATH, McpEndpoint
from policy.uploads import Uploads, json_body_limit
from rag.errors import NotReady
from rag.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from pipeline import Pipeline


def mount(app: FastAPI) -> McpEndpoint:
    """Serve MCP at ``/mcp`` of ``app``: its keys, its pipeline, inside its lifespan."""
    settings: Settings = app.state.settings

    def pipeline() -> Pipeline:
        found: Pipeline | None = getattr(app.state, "pipeline", None)
        if found is None or getattr(app.state, "service", None) is None:
            raise NotReady("the server is starting: models are still loading")
        return found

    uploads: Uploads = app.state.uploads
    endpoint = McpEndpoint(pipeline, settings, app.state.auth, json_body_limit(settings),
                           uploads)
    app.router.routes.append(
        Route(PATH, endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        # The API's lifespan first (it loads the pipeline), then MCP's sessions, which
        # end before the pipeline closes.
        async with inner(a) as state, endpoint.run():
            yield state

    app.router.lifespan_context = lifespan
    return endpoint
