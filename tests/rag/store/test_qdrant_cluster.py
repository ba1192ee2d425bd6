"""The qdrant backend on a cluster: what it asks the server for.

No Qdrant server runs here, so a small HTTP server on loopback stands in for one (a test
double for a remote thing): it answers what qdrant-client needs and records every
request, and the tests read the collection settings and read consistency off them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from qdrant_client import models

from rag.errors import ConfigError
from rag.settings import load_settings
from rag.store import build_store
from rag.store.qdrant import Cluster, QdrantStore
from rag.types import CollectionSpec, SearchRequest, VectorQuery

# The stand-in has no version endpoint; the client warns and carries on.
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version")

SPEC = CollectionSpec(dense={"text": 4}, sparse=("bm25",))


def _info() -> dict[str, Any]:
    info = models.CollectionInfo(
        status=models.CollectionStatus.GREEN,
        optimizer_status=models.OptimizersStatusOneOf.OK,
        segments_count=1,
        payload_schema={},
        config=models.CollectionConfig(
            params=models.CollectionParams(
                vectors={"text": models.VectorParams(size=4, distance=models.Distance.COSINE)},
                sparse_vectors={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
                shard_number=3, replication_factor=2, write_consistency_factor=2),
            hnsw_config=models.HnswConfig(m=16, ef_construct=100, full_scan_threshold=10000),
            optimizer_config=models.OptimizersConfig(default_segment_number=0,
                                                     flush_interval_sec=5),
        ),
    )
    return info.model_dump(mode="json", exclude_none=True)


class FakeQdrant(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict[str, list[str]], Any]] = []
    created: set[str] = set()

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, result: Any) -> None:
        body = json.dumps({"result": result, "status": "ok", "time": 0.0}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.requests.append((self.command, url.path, parse_qs(url.query), body))
        parts = url.path.strip("/").split("/")
        if parts[-1] == "exists":
            self._answer({"exists": parts[1] in self.created})
        elif self.command == "PUT" and len(parts) == 2:
            self.created.add(parts[1])
            self._answer(True)
        elif self.command == "GET" and len(parts) == 2:
            self._answer(_info())
        elif parts[-1] == "index":
            self._answer({"operation_id": 1, "status": "completed"})
        elif parts[-1] == "query":
            self._answer({"points": []})
        elif parts[-2:] == ["query", "batch"]:
            self._answer([{"points": []} for _ in (body or {}).get("searches", [])])
        elif parts[-1] == "points" and self.command == "POST":  # lookup by id
            self._answer([])
        elif parts[-1] == "scroll":
            self._answer({"points": [], "next_page_offset": None})
        else:
            self._answer(True)

    do_GET = do_PUT = do_POST = _handle


@pytest.fixture
def qdrant() -> Iterator[str]:
    FakeQdrant.requests = []
    FakeQdrant.created = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeQdrant)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _sent(method: str, suffix: str) -> list[tuple[dict[str, list[str]], Any]]:
    return [(q, b) for m, p, q, b in FakeQdrant.requests if m == method and p.endswith(suffix)]


def test_a_new_collection_is_created_sharded_and_replicated_as_configured(qdrant: str) -> None:
    settings = load_settings("default", overrides={"store": {
        "backend": "qdrant", "url": qdrant, "shard_number": 3, "replication_factor": 2,
        "write_consistency_factor": 2, "read_consistency": "majority"}})
    store = build_store(settings)
    store.ensure("docs", SPEC)
    ((_, body),) = _sent("PUT", "/collections/docs")
    assert body["shard_number"] == 3
    assert body["replication_factor"] == 2
    assert body["write_consistency_factor"] == 2
    # Tenants are payload partitions: the tenant key's index says so to the engine.
    indexes = {b["field_name"]: b["field_schema"] for _, b in _sent("PUT", "/index")}
    assert indexes["tenant"] == {"type": "keyword", "is_tenant": True}
    store.close()


def test_every_read_asks_for_the_configured_consistency(qdrant: str) -> None:
    store = QdrantStore(url=qdrant, cluster=Cluster(read_consistency="majority"))
    store.ensure("docs", SPEC)
    store.query("docs", SearchRequest(paths=[VectorQuery("text", [1.0, 0, 0, 0], 3)],
                                      limit=3))
    list(store.scroll("docs"))
    store.retrieve("docs", ["00000000-0000-0000-0000-000000000001"])
    (query,) = _sent("POST", "/points/query/batch")
    (scroll,) = _sent("POST", "/points/scroll")
    (lookup,) = _sent("POST", "/collections/docs/points")
    assert query[0]["consistency"] == ["majority"]
    assert scroll[0]["consistency"] == ["majority"]
    assert lookup[0]["consistency"] == ["majority"]
    store.close()


def test_a_number_of_replicas_is_sent_as_a_number(qdrant: str) -> None:
    store = QdrantStore(url=qdrant, cluster=Cluster(read_consistency=2))
    store.ensure("docs", SPEC)
    list(store.scroll("docs"))
    ((params, _),) = _sent("POST", "/points/scroll")
    assert params["consistency"] == ["2"]
    store.close()


def test_without_cluster_settings_the_server_keeps_its_defaults(qdrant: str) -> None:
    store = QdrantStore(url=qdrant)
    store.ensure("docs", SPEC)
    list(store.scroll("docs"))
    ((_, body),) = _sent("PUT", "/collections/docs")
    assert "shard_number" not in body and "replication_factor" not in body
    ((params, _),) = _sent("POST", "/points/scroll")
    assert "consistency" not in params
    store.close()


def test_local_mode_ignores_cluster_settings() -> None:
    store = QdrantStore(url=":memory:", cluster=Cluster(3, 2, 2, "all"))
    store.ensure("docs", SPEC)
    assert store.cluster == Cluster()
    assert store.count("docs") == 0
    store.close()


@pytest.mark.parametrize("field", ["shard_number", "replication_factor",
                                   "write_consistency_factor"])
def test_cluster_sizes_below_one_are_refused(field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_settings("default", overrides={"store": {field: 0}})
