"""The API app under a real uvicorn server on a free loopback port, for the benchmarks
that time HTTP (bench_api.py, bench_mcp.py)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn


def status_kb(pid: int, field: str) -> int:
    """A kB field of ``/proc/<pid>/status`` (VmRSS, VmHWM), 0 where it is absent."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` in a thread; yields its base URL and stops it on exit."""
    port = free_port()
    # MMRAG_BENCH_HTTP=h11 / MMRAG_BENCH_LOOP=asyncio: uvicorn's pure-Python choices, to
    # measure a checkout from before httptools and uvloop were dependencies.
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning",
        http=os.environ.get("MMRAG_BENCH_HTTP", "auto"),
        loop=os.environ.get("MMRAG_BENCH_LOOP", "auto")))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server failed to start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
