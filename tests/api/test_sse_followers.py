"""200 clients following one running ingest job over server-sent events leave the server
responsive: job event streams are async (no thread per follower), so ``/healthz`` stays
fast. A real uvicorn server on loopback, real httpx clients."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

import httpx
import pytest

from tests.api.conftest import Server

pytestmark = pytest.mark.slow

FOLLOWERS = 200
PROBES = 150


def long_text(n: int) -> bytes:
    lines = [f"Entry {i}: the tide gauge at pier {i % 97} read {i * 7 % 300} cm at dawn, "
             f"and the harbour master noted wind from bearing {i * 13 % 360}."
             for i in range(n)]
    return "\n".join(lines).encode()


async def follow(client: httpx.AsyncClient, url: str, connected: list[int]) -> list[str]:
    kinds: list[str] = []
    async with client.stream("GET", url) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                if not kinds:
                    connected.append(1)
                kinds.append(line.split(":", 1)[1].strip())
                if kinds[-1] == "done":
                    break
    return kinds


def probe(url: str, results: list[float], stop: threading.Event) -> None:
    """/healthz latencies from a thread of its own (its own connection), every 20 ms."""
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set() and len(results) < PROBES:
            start = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            results.append(time.perf_counter() - start)
            time.sleep(0.02)


def report(what: str, latencies: list[float]) -> float:
    latencies = sorted(latencies)
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    print(f"\n/healthz, {what}: n={len(latencies)} median="
          f"{statistics.median(latencies) * 1000:.1f} ms p99={p99 * 1000:.1f} ms "
          f"max={latencies[-1] * 1000:.1f} ms")
    return p99


def test_200_followers_leave_healthz_fast(server: Server) -> None:
    with server.client() as http:
        files = [("files", ("tides-1.txt", long_text(1500), "text/plain")),
                 ("files", ("tides-2.txt", long_text(1500)[::-1], "text/plain"))]
        r = http.post("/v1/collections/followers/documents", files=files)
        assert r.status_code == 202, r.text
        job = r.json()

    async def run() -> tuple[list[list[str]], list[float], list[float], str]:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        connected: list[int] = []
        async with httpx.AsyncClient(base_url=server.url, limits=limits,
                                     timeout=httpx.Timeout(600, connect=30)) as client:
            tasks = [asyncio.create_task(follow(client, job["events_url"], connected))
                     for _ in range(FOLLOWERS)]
            alone: list[float] = []  # the running job, no followers yet: the baseline
            await asyncio.to_thread(probe, server.url, alone, threading.Event())
            deadline = time.monotonic() + 60
            while len(connected) < FOLLOWERS:
                assert time.monotonic() < deadline, f"only {len(connected)} followers connected"
                await asyncio.sleep(0.05)
            latencies: list[float] = []
            stop = threading.Event()
            await asyncio.to_thread(probe, server.url, latencies, stop)
            status = (await client.get(job["url"])).json()["status"]
            streams = await asyncio.gather(*tasks)
        return streams, alone, latencies, status

    streams, alone, latencies, status_after = asyncio.run(run())
    assert status_after in ("queued", "running"), "the job ended before the measurement did"
    assert len(streams) == FOLLOWERS and all(s[-1] == "done" for s in streams)
    p99 = report("running job, no followers", alone)
    p99 = report(f"running job, {FOLLOWERS} SSE followers", latencies)
    assert p99 < 0.100, f"p99 {p99 * 1000:.1f} ms"
