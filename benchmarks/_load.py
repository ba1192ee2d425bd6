"""A closed-loop HTTP load generator, run as its own process by bench_api.py.

    python benchmarks/_load.py URL SPEC.json  ->  one JSON line on stdout

Why a separate process: client threads inside the server's process take the server's
GIL and its cores' time slices in ways no real client does, so the old in-process
threads understated what the server does under load. Here N asyncio clients (one
keep-alive connection each) send requests back to back for a fixed time; a shed request
(429/503 with ``Retry-After``) waits what the server asked, as a polite client does, and
is counted apart from failures (any other status, a missing ``Retry-After``, a
transport error).

Why raw HTTP/1.1 on asyncio streams rather than an HTTP client library: on a 2-core
machine the load generator shares the cores with the server, and every millisecond of
client CPU per request is taken from the server being measured (httpx's AsyncClient
cost about 1.5 ms of CPU per request, close to a tenth of what a search costs). Requests
are encoded once; a response is read by its ``Content-Length`` (or chunked encoding), as
wrk and similar tools do. The client's own CPU time per request is reported
(``client_cpu_ms``) so that a reader can see what was left to the server.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any
from urllib.parse import urlsplit


def encode_requests(host: str, spec: dict[str, Any]) -> list[bytes]:
    headers = {"Host": host, "Content-Type": "application/json", "Connection": "keep-alive",
               **(spec.get("headers") or {})}
    out = []
    for body in spec["bodies"]:
        payload = json.dumps(body).encode()
        head = f"POST {spec['path']} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()) + f"Content-Length: {len(payload)}\r\n\r\n"
        out.append(head.encode("latin-1") + payload)
    return out


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response: (status, lower-cased headers, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        body = b"".join(p[:-2] for p in parts)
    else:
        body = await reader.read()
    return status, headers, body


async def client(url: str, spec: dict[str, Any], requests: list[bytes], deadline: float,
                 k: int, out: dict[str, Any]) -> None:
    parts = urlsplit(url)
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    i = k
    timeout = spec.get("timeout", 120.0)
    while time.perf_counter() < deadline:
        request = requests[i % len(requests)]
        i += spec["clients"]
        start = time.perf_counter()
        try:
            if conn is None:
                conn = await asyncio.open_connection(parts.hostname, parts.port)
            reader, writer = conn
            writer.write(request)
            status, headers, body = await asyncio.wait_for(read_response(reader), timeout)
            if headers.get("connection", "").lower() == "close":
                writer.close()
                conn = None
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            out["failed"] += 1
            out["errors"].append(f"{type(exc).__name__}: {exc}")
            if conn is not None:
                conn[1].close()
                conn = None
            continue
        elapsed = time.perf_counter() - start
        if status == 200:
            out["ms"].append(elapsed * 1000)
        elif status in (429, 503) and headers.get("retry-after"):
            out["shed"] += 1
            out["shed_ms"].append(elapsed * 1000)
            wait = min(float(headers["retry-after"]), deadline - time.perf_counter())
            await asyncio.sleep(max(0.0, wait))
        else:
            out["failed"] += 1
            out["errors"].append(f"{status} {body[:200].decode('utf-8', 'replace')}")
    if conn is not None:
        conn[1].close()


async def main(url: str, spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"ms": [], "shed": 0, "shed_ms": [], "failed": 0, "errors": []}
    parts = urlsplit(url)
    requests = encode_requests(f"{parts.hostname}:{parts.port}", spec)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    deadline = start + spec["seconds"]
    await asyncio.gather(*(client(url, spec, requests, deadline, k, out)
                           for k in range(spec["clients"])))
    out["elapsed"] = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage.ru_utime + usage.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    out["client_cpu_ms"] = cpu * 1000 / max(1, len(out["ms"]) + out["shed"])
    out["errors"] = out["errors"][:5]
    return out


if __name__ == "__main__":
    with open(sys.argv[2]) as f:
        spec_ = json.load(f)
    print(json.dumps(asyncio.run(main(sys.argv[1], spec_))))
