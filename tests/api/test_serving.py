"""Many clients at once against a real server: queries past ``api.max_queue`` are shed
with 429 and ``Retry-After`` (REST search, chat in both modes, the openai SDK, MCP over
HTTP), the event loop keeps answering meanwhile, and ``/metrics`` shows the queues.

The server's text encoder stage is held (``Batcher.hold``), so the admitted searches
stay in flight exactly as long as the test needs: no timing guesses.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.api.conftest import TLS_MD, Server, api_settings, serve
from tests.mcpserver.client import http_client, run, texts

pytestmark = pytest.mark.slow

MAX_QUEUE = 2


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = api_settings(tmp_path_factory.mktemp("api-serving"), max_queue=MAX_QUEUE)
    with serve(settings) as srv:
        srv.ingest("kb", {"tls.md": TLS_MD.encode()})
        yield srv


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}(?:\{{{re.escape(want)}\}})? ([0-9.e+-]+)$" if want else (
        rf"^{re.escape(name)} ([0-9.e+-]+)$")
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"{name} {labels} not in /metrics"
    return float(found.group(1))


def wait_for(cond: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def assert_shed(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert "api.max_queue" in response.json()["error"]["message"]


def test_over_max_queue_queries_are_shed_and_the_loop_stays_free(busy_server: Server) -> None:
    srv = busy_server
    search = {"collection": "kb", "query": "rotate certificates", "limit": 3}
    answers: list[httpx.Response] = []

    def admitted_search() -> None:
        with srv.client() as c:
            answers.append(c.post("/v1/search", json=search))

    with srv.pipeline._batchers.stage("text").hold():  # noqa: SLF001
        threads = [threading.Thread(target=admitted_search) for _ in range(MAX_QUEUE)]
        for t in threads:
            t.start()
        wait_for(lambda: srv.pipeline.queue_depths()["text"] == MAX_QUEUE)
        with srv.client() as http:
            # The event loop is free: other routes answer while the queries wait.
            start = time.monotonic()
            assert http.get("/healthz").status_code == 200
            assert time.monotonic() - start < 2.0
            scrape = http.get("/metrics").text
            assert metric(scrape, "mmrag_queue_depth", stage="admitted") == MAX_QUEUE
            assert metric(scrape, "mmrag_queue_depth", stage="text") == MAX_QUEUE

            assert_shed(http.post("/v1/search", json=search))
            chat = {"model": "kb", "messages": [{"role": "user", "content": "rotate?"}]}
            assert_shed(http.post("/v1/chat/completions", json=chat))
            assert_shed(http.post("/v1/chat/completions", json={**chat, "stream": True}))

        sdk = openai.OpenAI(base_url=srv.v1, api_key="unused", max_retries=0)
        with pytest.raises(openai.RateLimitError):
            sdk.chat.completions.create(model="kb", messages=[
                {"role": "user", "content": "how do I rotate certificates?"}])

        async def mcp_search() -> Any:
            async with http_client(srv.url) as client:
                return await client.call_tool("search", {"collection": "kb",
                                                         "query": "certificates"})

        result = run(mcp_search)
        assert result.is_error and "api.max_queue" in texts(result)
        assert "retry in" in texts(result)
    for t in threads:
        t.join(60)

    assert [r.status_code for r in answers] == [200] * MAX_QUEUE
    assert all(r.json()["hits"][0]["source"] == "tls.md" for r in answers)
    with srv.client() as http:
        scrape = http.get("/metrics").text
        assert metric(scrape, "mmrag_queue_depth", stage="admitted") == 0
        assert metric(scrape, "mmrag_queries_shed_total") >= 5
        # The two held searches went through the encoder as one call of two.
        assert metric(scrape, "mmrag_batch_size_count", stage="text") >= 1
        assert metric(scrape, "mmrag_batch_size_bucket", le="1.0", stage="text") < (
            metric(scrape, "mmrag_batch_size_count", stage="text"))
        assert metric(scrape, "mmrag_queue_seconds_count", stage="store") >= MAX_QUEUE
        assert http.post("/v1/search", json=search).status_code == 200
