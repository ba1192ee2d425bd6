"""The HTTP API: an OpenAI-compatible chat endpoint with citations, search, uploads as
background jobs, media, health and metrics. Build it with :func:`api.app.create_app`;
run it with ``mmrag serve``.

Layout (request -> response): ``routers/`` (HTTP only) -> ``service.py`` (behaviour,
no HTTP) -> :class:`pipeline.Pipeline`; ``schemas.py`` holds the wire formats and
``errors.py`` the one mapping from :mod:`rag.errors` to statuses. Who may see what,
upload names and limits and query images are :mod:`policy`'s rules, shared with MCP,
whose endpoint ``mcp.py`` mounts at ``/mcp``.
"""
