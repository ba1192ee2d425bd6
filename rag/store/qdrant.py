"""The ``qdrant`` store: qdrant-client against a Qdrant server or cluster, or its local mode.

``url="http://host:6333"`` talks to a server; ``url=":memory:"`` or ``path=DIR`` runs
qdrant-client's local mode (pure Python, numpy brute force), which goes through the same
client methods, so the contract tests exercise this module's code without a server.

Why it looks the way it does:

- The client is created on first use: constructing it in local path mode opens and locks
  the storage folder, and in server mode there is nothing to check until a call.
- Local mode is not thread-safe (shared dicts and one SQLite connection), so its calls run
  under one lock; a server client is thread-safe and runs unlocked.
- Each collection's spec is cached after the first read: queries and upserts check their
  vector names and sizes against it before going to the engine, which gives the same
  ``BadInput`` as the edge backend instead of each engine's own wording.
- Fusion is ``FusionQuery(RRF | DBSF)`` inside the engine; its RRF constant is the
  engine default (2), which is the ``RRF_K`` the edge backend passes explicitly.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from qdrant_client import QdrantClient, models

from rag.errors import ConfigError, MmragError
from rag.payload import INDEXED_KEYS, TENANT
from rag.store._common import (
    COLLECTION_NAME,
    RRF_K,
    UPSERT_SLICE,
    CleanPath,
    CleanPoint,
    Layout,
    StoreBase,
    check_batch,
    check_name,
    check_spec,
    clean_points,
    clean_request,
    conflict,
    delete_conditions,
    not_found,
    paged_hits,
    plain_hits,
    scored_hits,
)
from rag.store._filters import (
    Conditions,
    MatchAnyOf,
    NumberEquals,
    translate,
)
from rag.store.qdrant_errors import engine_errors
from rag.types import CollectionSpec, Filter, Hit, Point, SearchRequest

assert RRF_K == 2, "FusionQuery(RRF) uses the engine's default constant, 2"

LOCAL_MEMORY = ":memory:"


@dataclass(frozen=True)
class Cluster:
    """How a collection spreads over a Qdrant cluster (``store.shard_number`` etc.): sent
    when a collection is created, and ``read_consistency`` with every read. None leaves
    the server's default. Tenants are payload partitions, not shard keys: the ``tenant``
    payload key has a keyword index with ``is_tenant`` (see :meth:`QdrantStore.ensure`)."""

    shard_number: int | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None
    read_consistency: int | str | None = None

    def consistency(self) -> models.ReadConsistency | None:
        value = self.read_consistency
        if value is None or isinstance(value, int):
            return value
        return models.ReadConsistencyType(value)


def _condition(cond: MatchAnyOf | NumberEquals) -> models.FieldCondition:
    if isinstance(cond, NumberEquals):
        return models.FieldCondition(
            key=cond.key, range=models.Range(gte=cond.value, lte=cond.value)
        )
    if len(cond.values) == 1:
        return models.FieldCondition(key=cond.key, match=models.MatchValue(value=cond.values[0]))
    return models.FieldCondition(key=cond.key, match=models.MatchAny(any=list(cond.values)))  # type: ignore[arg-type]


def _filter(conds: Conditions | None) -> models.Filter | None:
    if conds is None:
        return None
    return models.Filter(
        must=[_condition(c) for c in conds.must] or None,
        must_not=[_condition(c) for c in conds.must_not] or None,
    )


def _point(point: CleanPoint) -> models.PointStruct:
    vectors: dict[str, Any] = dict(point.dense)
    for name, (indices, values) in point.sparse.items():
        vectors[name] = models.SparseVector(indices=indices, values=values)
    return models.PointStruct(id=point.id, vector=vectors, payload=point.payload)


def _query_vector(path: CleanPath) -> list[float] | models.SparseVector:
    if path.sparse is not None:
        indices, values = path.sparse
        return models.SparseVector(indices=indices, values=values)
    assert path.dense is not None
    return path.dense


def _layout(info: models.CollectionInfo) -> Layout:
    params = info.config.params
    layout = Layout()
    vectors = params.vectors
    if isinstance(vectors, models.VectorParams):  # an unnamed vector: never ours
        vectors = {"": vectors}
    for name, vp in (vectors or {}).items():
        layout.dense[name] = (int(vp.size), str(vp.distance.value).lower())
    for name, sp in (params.sparse_vectors or {}).items():
        modifier = sp.modifier.value if sp.modifier is not None else None
        layout.sparse[name] = str(modifier).lower() if modifier else None
    return layout


class QdrantStore(StoreBase):
    """:class:`~rag.store.base.VectorStore` on qdrant-client (server or local mode)."""

    def __init__(
        self,
        url: str | None = None,
        path: str | None = None,
        api_key: str | None = None,
        prefer_grpc: bool = False,
        quantization: str = "none",
        oversampling: float = 2.0,
        hnsw_ef: int = 128,
        cluster: Cluster | None = None,
    ) -> None:
        self.quantization = quantization
        # Sharding and replication are a server's; local mode is one process, no copies.
        self.cluster = cluster if cluster is not None and not (
            path is not None or url == LOCAL_MEMORY) else Cluster()
        # Local mode searches exactly (and warns about params); a server rescores.
        self._params = None if (path is not None or url == LOCAL_MEMORY) else models.SearchParams(
            hnsw_ef=hnsw_ef,
            quantization=models.QuantizationSearchParams(rescore=True, oversampling=oversampling))
        if url and path:
            raise ConfigError(
                "the qdrant store takes store.url (a server, or ':memory:') or store.path "
                "(local mode on disk), not both"
            )
        if not url and not path:
            raise ConfigError(
                "the qdrant store needs store.url (e.g. http://localhost:6333, or ':memory:' "
                "for a throwaway local store) or store.path (local mode on disk)"
            )
        self.url = url
        self.path = path
        self._api_key = api_key
        self._prefer_grpc = prefer_grpc
        self.local = path is not None or url == LOCAL_MEMORY
        self._client_lock = threading.Lock()
        self._client: QdrantClient | None = None
        self._specs: dict[str, CollectionSpec] = {}
        # Local mode: one lock for every engine call. Server: no lock needed.
        self._call_lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self.local else contextlib.nullcontext()
        )

    # -- collections -------------------------------------------------------------------

    def collections(self) -> list[str]:
        with self._call(None, "list collections") as client:
            names = [c.name for c in client.get_collections().collections]
        return sorted(names)

    def exists(self, collection: str) -> bool:
        if not COLLECTION_NAME.fullmatch(collection):
            return False  # no collection can have that name
        with self._call(None, "look up a collection") as client:
            return bool(client.collection_exists(collection))

    def ensure(self, collection: str, spec: CollectionSpec) -> None:
        check_name(collection)
        check_spec(spec)
        with self._call(collection, "read") as client:
            exists = client.collection_exists(collection)
        if not exists:
            try:
                with self._call(collection, "create") as client:
                    self._create(client, collection, spec)
            except MmragError:
                # Another client may have created it between our check and our create
                # (servers answer 400 or 409 for that); then compare specs below.
                with self._call(collection, "read") as client:
                    if not client.collection_exists(collection):
                        raise
        with self._call(collection, "read") as client:
            info = client.get_collection(collection)
        diffs = _layout(info).differences(spec)
        if diffs:
            raise conflict(collection, diffs)
        with self._call(collection, "index") as client:
            if not self.local:
                # Filter keys get keyword indexes (only where missing, so a collection made
                # elsewhere or by an older mmrag catches up). Local mode has no indexes.
                for key in INDEXED_KEYS:
                    if key not in (info.payload_schema or {}):
                        client.create_payload_index(
                            collection,
                            key,
                            field_schema=models.KeywordIndexParams(
                                type=models.KeywordIndexType.KEYWORD, is_tenant=key == TENANT
                            ),
                            wait=True,
                        )
        self._specs.pop(collection, None)

    def _create(self, client: QdrantClient, collection: str, spec: CollectionSpec) -> None:
        client.create_collection(
            collection,
            vectors_config={
                # int8: originals on disk, the quantized copy in RAM (see settings);
                # the deprecated flags rather than ``memory``, which servers before
                # 1.17 reject.
                name: models.VectorParams(size=size, distance=models.Distance.COSINE,
                                          on_disk=True if self.quantization == "int8"
                                          else None)
                for name, size in spec.dense.items()
            },
            sparse_vectors_config={
                name: models.SparseVectorParams(modifier=models.Modifier.IDF)
                for name in spec.sparse
            },
            quantization_config=models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(
                    type=models.ScalarType.INT8, quantile=0.99, always_ram=True)
            ) if self.quantization == "int8" else None,
            shard_number=self.cluster.shard_number,
            replication_factor=self.cluster.replication_factor,
            write_consistency_factor=self.cluster.write_consistency_factor,
        )

    def spec(self, collection: str) -> CollectionSpec:
        check_name(collection)
        cached = self._specs.get(collection)
        if cached is not None:
            return cached
        with self._call(collection, "read") as client:
            spec = _layout(client.get_collection(collection)).to_spec()
        self._specs[collection] = spec
        return spec

    def drop(self, collection: str) -> None:
        check_name(collection)
        self._specs.pop(collection, None)
        with self._call(collection, "drop") as client:
            if not client.collection_exists(collection):
                raise not_found(collection)
            client.delete_collection(collection)

    # -- points --------------------------------------------------------------------------

    def upsert(self, collection: str, points: list[Point]) -> None:
        clean = clean_points(collection, self.spec(collection), points)
        with self._call(collection, "write to") as client:
            for start in range(0, len(clean), UPSERT_SLICE):
                batch = [_point(p) for p in clean[start : start + UPSERT_SLICE]]
                client.upsert(collection, points=batch, wait=True)

    def delete(self, collection: str, flt: Filter) -> int:
        conds = delete_conditions(collection, flt)
        self.spec(collection)  # NotFound before anything else
        engine_filter = _filter(conds)
        assert engine_filter is not None  # conds is not None
        with self._call(collection, "delete from") as client:
            # Count, then delete: the engine does not report how many a filter removed.
            # On a server another writer may change the set in between; the count is
            # then approximate, the delete is still exactly "what matches now".
            n = client.count(collection, count_filter=engine_filter, exact=True).count
            if n:
                client.delete(
                    collection,
                    points_selector=models.FilterSelector(filter=engine_filter),
                    wait=True,
                )
        return int(n)

    def query(self, collection: str, request: SearchRequest) -> list[Hit]:
        return self.query_batch(collection, [request])[0]

    def query_batch(self, collection: str, requests: list[SearchRequest]) -> list[list[Hit]]:
        """Several queries in one call (``query_batch_points``): one round trip to a
        server, one pass of the local engine's lock."""
        spec = self.spec(collection)
        batch = [self._query_request(collection, spec, r) for r in requests]
        with self._call(collection, "query") as client:
            responses = client.query_batch_points(collection, requests=batch,
                                                  consistency=self.cluster.consistency())
        return [scored_hits(resp.points, spec, r.with_vectors)
                for resp, r in zip(responses, requests, strict=True)]

    def _query_request(self, collection: str, spec: CollectionSpec,
                       request: SearchRequest) -> models.QueryRequest:
        """One query of a batch (a lone :meth:`query` is a batch of one)."""
        paths = clean_request(collection, spec, request)
        engine_filter = _filter(translate(request.filter))
        payload: bool | models.PayloadSelectorExclude = (
            models.PayloadSelectorExclude(exclude=list(request.exclude_payload))
            if request.exclude_payload else True)
        if len(paths) == 1:
            return models.QueryRequest(
                query=_query_vector(paths[0]), using=paths[0].using, filter=engine_filter,
                params=self._params if paths[0].dense is not None else None,
                limit=request.limit, with_payload=payload, with_vector=request.with_vectors,
            )
        fusion = models.Fusion.RRF if request.fusion == "rrf" else models.Fusion.DBSF
        return models.QueryRequest(
            prefetch=[
                models.Prefetch(query=_query_vector(p), using=p.using, filter=engine_filter,
                                limit=p.limit,
                                params=self._params if p.dense is not None else None)
                for p in paths
            ],
            query=models.FusionQuery(fusion=fusion), filter=engine_filter,
            limit=request.limit, with_payload=payload, with_vector=request.with_vectors,
        )

    def scroll(
        self, collection: str, flt: Filter | None = None, batch: int = 256
    ) -> Iterator[Hit]:
        check_batch(batch)
        self.spec(collection)  # NotFound now, not on the first next()
        return self._pages(collection, _filter(translate(flt)), batch)

    def _pages(
        self, collection: str, engine_filter: models.Filter | None, batch: int
    ) -> Iterator[Hit]:
        def fetch(offset: Any) -> tuple[Any, Any]:
            with self._call(collection, "scroll") as client:
                return client.scroll(
                    collection,
                    scroll_filter=engine_filter,
                    limit=batch,
                    offset=offset,
                    with_payload=True,
                    with_vectors=False,
                    consistency=self.cluster.consistency(),
                )

        return paged_hits(fetch)

    def retrieve(self, collection: str, ids: list[str]) -> list[Hit]:
        check_name(collection)
        if not ids:
            self.spec(collection)
            return []
        with self._call(collection, "retrieve") as client:
            records = client.retrieve(collection, list(ids), with_payload=True,
                                      with_vectors=False,
                                      consistency=self.cluster.consistency())
        return plain_hits(records)

    def count(self, collection: str, flt: Filter | None = None) -> int:
        check_name(collection)
        engine_filter = _filter(translate(flt))
        with self._call(collection, "count") as client:
            return int(client.count(collection, count_filter=engine_filter, exact=True).count)

    def optimize(self, collection: str) -> None:
        """A no-op: a server indexes in the background, local mode has no index. Still
        raises ``NotFound`` for a missing collection, like the edge backend."""
        self.spec(collection)

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
            self._specs.clear()
        if client is not None:
            with self._call_lock, contextlib.suppress(Exception):
                client.close()

    # -- internals -----------------------------------------------------------------------

    def _get_client(self) -> QdrantClient:
        with self._client_lock:
            if self._client is None:
                if self.path is not None:
                    # Our lock serialises every call, so SQLite's same-thread check
                    # (on by default on macOS) would only get in the way.
                    self._client = QdrantClient(
                        path=self.path, force_disable_check_same_thread=True
                    )
                elif self.url == LOCAL_MEMORY:
                    self._client = QdrantClient(location=LOCAL_MEMORY)
                else:
                    self._client = QdrantClient(
                        url=self.url, api_key=self._api_key, prefer_grpc=self._prefer_grpc
                    )
            return self._client

    @contextmanager
    def _call(self, collection: str | None, action: str) -> Iterator[QdrantClient]:
        """The client for one engine call, with its exceptions turned into ours."""
        with engine_errors(self.url, self.path, collection, action,
                           forget=self._specs.pop if collection else None):
            client = self._get_client()
            with self._call_lock:
                yield client


__all__ = ["Cluster", "QdrantStore"]
