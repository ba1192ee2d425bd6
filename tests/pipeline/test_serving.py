"""Concurrent queries through one real pipeline (offline profile, Qdrant Edge): they are
merged into shared encoder and store calls and get exactly what they get one by one."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import Pipeline
from rag.errors import Busy
from tests.conftest import offline
from tests.rag.generate.fake_vlm import FakeVLM

pytestmark = pytest.mark.integration

DOCS = {
    "tls.md": "Rotate TLS certificates on the gateway with certctl rotate --all every 90 days.",
    "vacuum.md": "Autovacuum reclaims dead tuples; lower autovacuum_vacuum_scale_factor.",
    "probes.md": "A liveness probe firing during start-up restarts pods; add a startupProbe.",
    "redis.txt": "With maxmemory and allkeys-lru, session keys were evicted; use volatile-lru.",
    "dns.md": "The outage began when the resolver cache expired behind a firewall change.",
    "backup.md": "Nightly snapshots are kept 14 days, weekly ones three months.",
}
QUERIES = ["rotate certificates", "dead tuples", "pods restarted at start-up",
           "users logged out redis", "what caused the DNS outage", "how long are backups kept"]


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    settings = offline(tmp_path_factory.mktemp("serving") / "data", api={"max_queue": 64,
                                                                        "query_workers": 64})
    with Pipeline(settings) as p:
        p.load()
        p.ingest_bytes("c", {k: v.encode() for k, v in DOCS.items()})
        yield p


def ranked(pipe: Pipeline, query: str) -> list[tuple[str, int, float]]:
    return [(h.source, h.chunk, round(h.score, 4)) for h in pipe.search("c", query, limit=4)]


def wait_for(cond: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_concurrent_searches_share_calls_and_match_searching_alone(pipe: Pipeline) -> None:
    alone = {q: ranked(pipe, q) for q in QUERIES}
    sizes: dict[str, list[int]] = {}
    pipe.on_batch(lambda stage, n, waits: sizes.setdefault(stage, []).append(n))
    batchers = pipe._batchers  # noqa: SLF001 (hold the encoder so the queries line up)
    results: dict[str, list[tuple[str, int, float]]] = {}
    queries = QUERIES * 2

    def search(k: int) -> None:
        results[f"{k}"] = ranked(pipe, queries[k])

    with batchers.stage("text").hold():
        threads = [threading.Thread(target=search, args=(k,)) for k in range(len(queries))]
        for t in threads:
            t.start()
        wait_for(lambda: pipe.queue_depths()["text"] == len(queries))
        assert pipe.queue_depths()["admitted"] == len(queries)
    for t in threads:
        t.join(60)
    assert sizes["text"] == [len(queries)]  # one encoder call for all twelve
    assert sum(sizes["store"]) == len(queries) and max(sizes["store"]) > 1
    assert {k: v for k, v in results.items()} == {
        f"{k}": alone[q] for k, q in enumerate(queries)}
    assert pipe.queue_depths() == {"admitted": 0, "waiting": 0, "text": 0, "store": 0,
                                   "complete": 0, "ocr": 0}


def test_only_query_workers_run_at_once_the_rest_wait_their_turn(tmp_path: Path) -> None:
    settings = offline(tmp_path / "data", api={"max_queue": 8, "query_workers": 2})
    with Pipeline(settings) as p:
        p.load()
        p.ingest_bytes("c", {k: v.encode() for k, v in DOCS.items()})
        waits: list[float] = []
        p.on_batch(lambda stage, n, w: waits.extend(w) if stage == "admission" else None)
        found: list[str] = []
        with p._batchers.stage("text").hold():  # noqa: SLF001
            threads = [threading.Thread(target=lambda q=q: found.append(
                p.search("c", q, limit=1)[0].source)) for q in QUERIES[:5]]
            for t in threads:
                t.start()
            wait_for(lambda: p.queue_depths()["waiting"] == 3)
            depths = p.queue_depths()
            assert depths["admitted"] == 5 and depths["text"] == 2
        for t in threads:
            t.join(60)
        assert sorted(found) == sorted(["tls.md", "vacuum.md", "probes.md", "redis.txt",
                                        "dns.md"])
        assert len(waits) == 5 and max(waits) > 0


def test_queries_over_max_queue_are_refused_at_once(tmp_path: Path) -> None:
    settings = offline(tmp_path / "data", api={"max_queue": 1})
    with Pipeline(settings) as p:
        p.load()
        p.ingest_bytes("c", {"tls.md": DOCS["tls.md"].encode()})
        with p._batchers.stage("text").hold():  # noqa: SLF001
            first = threading.Thread(target=p.search, args=("c", "certificates"))
            first.start()
            wait_for(lambda: p.queue_depths()["text"] == 1)
            start = time.monotonic()
            with pytest.raises(Busy, match="api.max_queue"):
                p.ask("c", "how do I rotate certificates")
            assert time.monotonic() - start < 1.0
        first.join(60)
        assert p.shed_queries == 1
        assert p.ask("c", "how do I rotate certificates").citations


def test_a_slow_remote_model_holds_a_place_but_no_run_slot(tmp_path: Path) -> None:
    """Chats waiting on an OpenAI-compatible server are a wait, not work: with one run
    slot and two such chats in flight, a search still runs at once."""
    with FakeVLM(reply="Rotate them with certctl [1].", delay_s=2.0) as fake:
        settings = offline(tmp_path / "data", api={"max_queue": 8, "query_workers": 1},
                           generator={"backend": "openai",
                                      "openai": {"base_url": fake.base_url,
                                                 "model": "fake-vlm"}})
        with Pipeline(settings) as p:
            p.load()
            p.ingest_bytes("c", {k: v.encode() for k, v in DOCS.items()})
            chats = [threading.Thread(target=p.ask, args=("c", "rotate certificates?"))
                     for _ in range(2)]
            for t in chats:
                t.start()
            wait_for(lambda: len(fake.requests) == 2)
            assert p.queue_depths()["admitted"] == 2
            start = time.monotonic()
            assert p.search("c", "dead tuples", limit=1)[0].source == "vacuum.md"
            assert time.monotonic() - start < 1.5  # not behind the 2 s answers
            for t in chats:
                t.join(30)
