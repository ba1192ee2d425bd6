"""``mmrag mcp``: the MCP server over stdio, for assistants that start it as a subprocess
(Claude Desktop, IDEs, the SDK's own client). Loaded by ``cli/main.py``.

The pipeline is built and its models loaded inside the server's lifespan, after the SDK
has claimed stdout for the protocol, so nothing a library prints while loading can
corrupt the JSON-RPC stream; our own messages go to stderr. A missing model still ends
the process with exit code 3 and its message, as every other command does.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline import Pipeline


def cmd_mcp(args: argparse.Namespace) -> int:
    import anyio.to_thread

    from cli.common import settings_from_args
    from mcpserver import build_server
    from pipeline import Pipeline
    from pipeline.datadir import ensure_private_dir
    from rag.errors import MmragError

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    settings = settings_from_args(args)
    loaded: list[Pipeline] = []

    def pipeline() -> Pipeline:
        if not loaded:
            raise MmragError("the pipeline is not loaded yet")
        return loaded[0]

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        ensure_private_dir(settings.data_path)
        pipe = Pipeline(settings)
        try:
            await anyio.to_thread.run_sync(pipe.load)
            loaded.append(pipe)
            yield
        finally:
            pipe.close()

    print(f"mmrag: MCP over stdio (profile {settings.profile}, data in {settings.data_path})",
          file=sys.stderr)
    server = build_server(pipeline, settings, "stdio", lifespan=lifespan)
    try:
        server.run("stdio")
    except BaseExceptionGroup as group:  # task groups wrap a failed model load
        raise _first_mmrag_error(group) or group from None
    return 0


def _first_mmrag_error(group: BaseExceptionGroup[Any]) -> Exception | None:
    from rag.errors import MmragError

    for exc in group.exceptions:
        if isinstance(exc, MmragError):
            return exc
        if isinstance(exc, BaseExceptionGroup) and (found := _first_mmrag_error(exc)):
            return found
    return None


def add_commands(sub: Any) -> None:
    from cli.common import common_options

    p = sub.add_parser(
        "mcp", help="serve the MCP tools (search, ask, collections, documents, ingest, "
                    "delete) over stdio for assistants",
    )
    common_options(p, local_flag=False)
    p.set_defaults(func=cmd_mcp)
