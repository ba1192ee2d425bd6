"""A closed-loop HTTP load generator, run as its own process by bench_api.py.

    python benchmarks/_load.py URL SPEC.json  ->  one JSON line on stdout

Why a separate process: client threads inside the server's process take the server's
GIL and its cores' time slices in ways no real client does, so the old in-process
threads understated what the server does under load. Here N asyncio clients (one
keep-alive connection each) send requests back to back for a fixed time; a shed request
(429/503 with ``Retry-After``) waits what the server asked, as a polite client does, and
is counted apart from failures (any other status, a missing ``Retry-After``, a
transport error).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx


async def client(url: str, spec: dict[str, Any], deadline: float, k: int,
                 out: dict[str, Any]) -> None:
    bodies = spec["bodies"]
    i = k
    async with httpx.AsyncClient(base_url=url, timeout=spec.get("timeout", 120.0),
                                 headers=spec.get("headers") or {}) as http:
        while time.perf_counter() < deadline:
            body = bodies[i % len(bodies)]
            i += spec["clients"]
            start = time.perf_counter()
            try:
                r = await http.post(spec["path"], json=body)
            except httpx.HTTPError as exc:
                out["failed"] += 1
                out["errors"].append(f"{type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - start
            if r.status_code == 200:
                out["ms"].append(elapsed * 1000)
            elif r.status_code in (429, 503) and r.headers.get("retry-after"):
                out["shed"] += 1
                out["shed_ms"].append(elapsed * 1000)
                wait = min(float(r.headers["retry-after"]), deadline - time.perf_counter())
                await asyncio.sleep(max(0.0, wait))
            else:
                out["failed"] += 1
                out["errors"].append(f"{r.status_code} {r.text[:200]}")


async def main(url: str, spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"ms": [], "shed": 0, "shed_ms": [], "failed": 0, "errors": []}
    start = time.perf_counter()
    deadline = start + spec["seconds"]
    await asyncio.gather(*(client(url, spec, deadline, k, out)
                           for k in range(spec["clients"])))
    out["elapsed"] = time.perf_counter() - start
    out["errors"] = out["errors"][:5]
    return out


if __name__ == "__main__":
    with open(sys.argv[2]) as f:
        spec_ = json.load(f)
    print(json.dumps(asyncio.run(main(sys.argv[1], spec_))))
