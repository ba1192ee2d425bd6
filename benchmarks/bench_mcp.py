"""MCP round trips (search, ask) over stdio and streamable HTTP, the chat page's time to
first streamed token, and the page's weight, printed as a table.

    .venv/bin/python benchmarks/bench_mcp.py [--calls 20] [--asks 5]

Offline profile (MiniLM + BM25 + OCR, Qdrant Edge, extractive answers) over
``examples/corpus`` in a temporary data dir. HTTP: the real app under uvicorn on a
loopback port, one MCP session with the SDK's client, sequential calls. stdio: a real
``mmrag mcp`` subprocess, one session. (Run one after the other: the embedded store is
opened by one process at a time.) Each tool call returns text plus up to 4 thumbnails,
as an assistant would receive them. The page figures need Debian's ``chromium``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import anyio  # noqa: E402
import httpx  # noqa: E402
import httpx2  # noqa: E402
from _server import running  # noqa: E402  (benchmarks/ is the script's folder)
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from api.app import create_app  # noqa: E402
from api.mcp import mount as mount_mcp  # noqa: E402
from rag.settings import load_settings  # noqa: E402

COLLECTION = "bench"
CORPUS = ROOT / "examples" / "corpus"


def queries() -> list[str]:
    lines = (ROOT / "examples" / "queries.jsonl").read_text().splitlines()
    return [json.loads(x)["query"] for x in lines if x.strip() and "query" in json.loads(x)
            and json.loads(x)["query"]]


Timings = dict[str, list[float]]


async def timed_calls(client: Client, qs: list[str], calls: int, asks: int) -> Timings:
    out: dict[str, list[float]] = {"search": [], "ask": []}
    await client.call_tool("search", {"collection": COLLECTION, "query": qs[0]})  # warm-up
    for i in range(calls):
        t = time.perf_counter()
        r = await client.call_tool("search", {"collection": COLLECTION, "query": qs[i % len(qs)]})
        out["search"].append((time.perf_counter() - t) * 1000)
        assert not r.is_error, r.content
    for i in range(asks):
        t = time.perf_counter()
        r = await client.call_tool("ask", {"collection": COLLECTION, "question": qs[i % len(qs)]})
        out["ask"].append((time.perf_counter() - t) * 1000)
        assert not r.is_error, r.content
    return out


def over_http(url: str, qs: list[str], calls: int, asks: int) -> dict[str, list[float]]:
    async def go() -> dict[str, list[float]]:
        async with (
            httpx2.AsyncClient(timeout=httpx2.Timeout(60, read=300)) as http,
            Client(streamable_http_client(url + "/mcp", http_client=http)) as client,
        ):
            return await timed_calls(client, qs, calls, asks)

    return anyio.run(go)


def over_stdio(data_dir: Path, qs: list[str], calls: int, asks: int) -> tuple[float, Timings]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "cli.main", "mcp", "--profile", "offline", "--data-dir", str(data_dir)],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=str(ROOT),
    )

    async def go() -> tuple[float, dict[str, list[float]]]:
        t = time.perf_counter()
        async with Client(params) as client:
            start = time.perf_counter() - t
            return start, await timed_calls(client, qs, calls, asks)

    return anyio.run(go)


def page_figures(url: str, qs: list[str], asks: int) -> tuple[int, int, list[float]]:
    weight = raw = 0
    with httpx.Client(base_url=url) as http:
        for path in ("/", "/static/app.js", "/static/app.css"):
            body = http.get(path).content
            raw += len(body)
            weight += len(gzip.compress(body))
    ttft: list[float] = []
    chromium = shutil.which("chromium")
    if chromium is None:
        return raw, weight, ttft
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True,
                                     args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_function("() => document.querySelector('[data-testid=collection]').value")
        page.get_by_test_id("collection").select_option(COLLECTION)
        for i in range(asks + 1):
            page.get_by_test_id("question").fill(qs[i % len(qs)])
            page.get_by_test_id("send").click()
            page.wait_for_function("n => document.querySelectorAll('[data-testid=answer]')[n]"
                                   "?.getAttribute('aria-busy') === 'false'", arg=i)
            if i:  # the first ask warms up
                ttft.append(page.evaluate("window.mmragMetrics.firstTokenMs"))
        browser.close()
    return raw, weight, ttft


def row(label: str, ms: list[float]) -> str:
    if not ms:
        return f"| {label} | - | - | - | 0 |"
    s = sorted(ms)
    p95 = s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]
    return f"| {label} | {statistics.median(s):.1f} | {p95:.1f} | {s[-1]:.1f} | {len(s)} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20, help="search calls per transport")
    ap.add_argument("--asks", type=int, default=5, help="ask calls per transport / page")
    args = ap.parse_args()
    qs = queries()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        settings = load_settings("offline", overrides={"data_dir": data})
        from pipeline import Pipeline

        pipe = Pipeline(settings)
        report = pipe.ingest(COLLECTION, [str(CORPUS)])
        pipe.close()
        print(report.summary(), file=sys.stderr)
        app = create_app(settings)
        mount_mcp(app)
        with running(app) as url:
            http = over_http(url, qs, args.calls, args.asks)
            raw, gz, ttft = page_figures(url, qs, args.asks)
        start, stdio = over_stdio(data, qs, args.calls, args.asks)

    print("| round trip (ms) | p50 | p95 | max | n |")
    print("|---|---|---|---|---|")
    print(row("MCP search, HTTP", http["search"]))
    print(row("MCP search, stdio", stdio["search"]))
    print(row("MCP ask, HTTP", http["ask"]))
    print(row("MCP ask, stdio", stdio["ask"]))
    print(row("page: first streamed token", ttft))
    print()
    print(f"stdio server start (spawn + model load + handshake): {start:.1f} s")
    print(f"page weight: {raw:,} bytes (/, app.js, app.css); {gz:,} bytes gzipped")


if __name__ == "__main__":
    main()
