"""The SDK's own MCP client, over stdio (a real ``mmrag mcp`` subprocess) or HTTP."""

from __future__ import annotations

import base64
import io
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, ImageContent, TextContent
from PIL import Image

from tests.conftest import ROOT

T = TypeVar("T")


def run(fn: Callable[[], Awaitable[T]]) -> T:
    return anyio.run(fn)


def stdio_params(data_dir: Path, profile: str = "offline") -> StdioServerParameters:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "cli.main", "mcp", "--profile", profile, "--data-dir", str(data_dir)],
        env=env, cwd=str(ROOT),
    )


@asynccontextmanager
async def http_client(url: str, key: str | None = None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    timeout = httpx2.Timeout(60, read=300)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        yield client


def texts(result: CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, TextContent))


def images(result: CallToolResult) -> list[Image.Image]:
    out = []
    for block in result.content:
        if isinstance(block, ImageContent):
            assert block.mime_type == "image/webp"
            img = Image.open(io.BytesIO(base64.b64decode(block.data)))
            img.load()
            out.append(img)
    return out


def tool_map(listing: Any) -> dict[str, Any]:
    return {t.name: t for t in listing.tools}
