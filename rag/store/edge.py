"""The ``edge`` store: Qdrant Edge (qdrant-edge-py) in-process, one shard per collection.

Layout: ``root/<collection>/`` is one ``EdgeShard`` directory (its ``edge_config.json``,
WAL and segments). Nothing else is written, so a collection is exactly a folder that
can be backed up, copied or deleted with the usual tools.

Why it looks the way it does:

- Shards are opened lazily and kept open: opening replays the WAL and maps segments,
  which is too slow per request, and a shard holds an exclusive lock on its WAL, so
  only one process (and one ``EdgeStore``) may have a collection open at a time.
- Every shard call runs under that shard's ``threading.Lock``: the API server calls the
  store from worker threads and the bindings make no promise about concurrent use.
- Writes end with ``flush()`` so a point the call returned for survives the process
  exiting without ``close()`` (a CLI run killed after ingest, a crashed worker).
- Collections are created in a hidden temporary folder and renamed into place, so a
  crash mid-create never leaves a half-made collection that later looks valid.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from rag.errors import Conflict, MmragError
from rag.payload import INDEXED_KEYS
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
from rag.store._filters import Conditions, MatchAnyOf, NumberEquals, translate
from rag.store.point_cache import PointCache, compact, scored
from rag.types import CollectionSpec, Filter, Hit, Point, SearchRequest

# Where Qdrant Edge persists a shard's configuration (documented in its shard lifecycle
# reference); the shard object itself has no accessor for it.
CONFIG_FILE = "edge_config.json"


@dataclass
class _Shard:
    """An open shard, the spec it was created with, and the lock its calls run under."""

    shard: qe.EdgeShard
    spec: CollectionSpec
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False
    # Converted points read from this shard (rag/store/point_cache.py); cleared by writes.
    cache: PointCache = field(default_factory=lambda: PointCache(0))


@contextmanager
def _engine(action: str, collection: str) -> Iterator[None]:
    """Turn the bindings' untyped exceptions into ours; ours pass through untouched."""
    try:
        yield
    except MmragError:
        raise
    except Exception as exc:  # the bindings raise plain Exception for everything
        message = str(exc)
        if "WouldBlock" in message:
            raise Conflict(
                f"collection {collection!r} is open in another process (Qdrant Edge allows "
                "one process per collection): stop the other mmrag process, or use the "
                "qdrant backend with a server for shared access"
            ) from exc
        raise MmragError(
            f"edge store could not {action} collection {collection!r}: {message}"
        ) from exc


def _read_layout(path: Path) -> Layout | None:
    """The vectors a shard was created with, from its persisted config; ``None`` when
    ``path`` holds no shard."""
    file = path / CONFIG_FILE
    try:
        raw = json.loads(file.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise MmragError(f"cannot read edge collection config {file}: {exc}") from exc
    layout = Layout()
    for name, params in (raw.get("vectors") or {}).items():
        layout.dense[name] = (int(params["size"]), str(params.get("distance", "")).lower())
    for name, params in (raw.get("sparse_vectors") or {}).items():
        modifier = (params or {}).get("modifier")
        layout.sparse[name] = str(modifier).lower() if modifier else None
    return layout


def _config(spec: CollectionSpec, quantization: str) -> qe.EdgeConfig:
    # int8: the quantized copy is pinned in RAM and searched; the original vectors stay
    # on disk (Cold: paged in only for the oversampled candidates that get rescored), so
    # a quantized collection needs about a third of the RAM of a plain one (the HNSW
    # graph stays in RAM): 623 against 1,696 MB at 1M x 384-d (bench_quantization.py).
    quant = (
        qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99,
                                    memory=qe.Memory.Pinned)
        if quantization == "int8" else None
    )
    originals = qe.Memory.Cold if quant else None
    return qe.EdgeConfig(
        vectors={
            name: qe.EdgeVectorParams(size=size, distance=qe.Distance.Cosine,
                                      quantization_config=quant, memory=originals)
            for name, size in spec.dense.items()
        },
        sparse_vectors={
            name: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf) for name in spec.sparse
        },
    )


def _value(value: str | int | bool) -> Any:
    # qdrant-edge-py 0.9 converts a Python bool in MatchValue to the integer 1/0, which
    # never equals a stored true/false; numpy.bool_ is not an int subclass and reaches
    # the engine as a real boolean.
    return np.bool_(value) if isinstance(value, bool) else value


def _condition(cond: MatchAnyOf | NumberEquals) -> qe.FieldCondition:
    if isinstance(cond, NumberEquals):
        return qe.FieldCondition(
            key=cond.key, range=qe.RangeFloat(gte=cond.value, lte=cond.value)
        )
    if len(cond.values) == 1:
        return qe.FieldCondition(key=cond.key, match=qe.MatchValue(_value(cond.values[0])))
    return qe.FieldCondition(key=cond.key, match=qe.MatchAny(list(cond.values)))  # type: ignore[arg-type]


def _filter(conds: Conditions | None) -> qe.Filter | None:
    if conds is None:
        return None
    return qe.Filter(
        must=[_condition(c) for c in conds.must] or None,
        must_not=[_condition(c) for c in conds.must_not] or None,
    )


def _point(point: CleanPoint) -> qe.Point:
    vectors: dict[str, Any] = dict(point.dense)
    for name, (indices, values) in point.sparse.items():
        vectors[name] = qe.SparseVector(indices, values)
    return qe.Point(point.id, vectors, point.payload)


def _nearest(path: CleanPath) -> qe.Query:
    if path.sparse is not None:
        return qe.Query.Nearest(qe.SparseVector(*path.sparse), using=path.using)
    assert path.dense is not None
    return qe.Query.Nearest(path.dense, using=path.using)


class EdgeStore(StoreBase):
    """:class:`~rag.store.base.VectorStore` on Qdrant Edge, persisted under ``root``."""

    def __init__(self, root: Path, quantization: str = "none", oversampling: float = 2.0,
                 hnsw_ef: int = 128, cache_points: int = 2048) -> None:
        # Cheap by design: nothing is created or opened until a collection is used.
        self.root = Path(root).expanduser()
        self.quantization = quantization
        # Dense searches rescore quantized candidates with the original vectors (a no-op
        # on collections created without quantization).
        self._params = qe.SearchParams(hnsw_ef=hnsw_ef, quantization=qe.QuantizationSearchParams(
            rescore=True, oversampling=oversampling))
        self.cache_points = cache_points
        self._lock = threading.Lock()  # guards _shards and folder-level changes
        self._shards: dict[str, _Shard] = {}

    # -- collections -------------------------------------------------------------------

    def collections(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if entry.is_dir() and COLLECTION_NAME.match(entry.name)
            and (entry / CONFIG_FILE).is_file()
        )

    def exists(self, collection: str) -> bool:
        return bool(COLLECTION_NAME.fullmatch(collection)) and (
            self.root / collection / CONFIG_FILE).is_file()

    def ensure(self, collection: str, spec: CollectionSpec) -> None:
        check_name(collection)
        check_spec(spec)
        with self._lock:
            layout = _read_layout(self.root / collection)
            if layout is None:
                layout = self._create(collection, spec)
        diffs = layout.differences(spec)
        if diffs:
            raise conflict(collection, diffs)

    def _create(self, collection: str, spec: CollectionSpec) -> Layout:
        """Build the shard in a hidden folder, then rename it into place atomically.
        Returns the layout now on disk (another process may have won the race)."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".creating-{collection}-{uuid.uuid4().hex}"
        try:
            with _engine("create", collection):
                qe.EdgeShard.create(str(staging), _config(spec, self.quantization)).close()
            # Fails if the name exists by now (another process won): compare with that.
            with contextlib.suppress(OSError):
                os.rename(staging, self.root / collection)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        layout = _read_layout(self.root / collection)
        if layout is None:
            raise MmragError(
                f"{self.root / collection} exists but is not an edge collection; move it "
                "away or choose another collection name"
            )
        return layout

    def spec(self, collection: str) -> CollectionSpec:
        return self._open(collection).spec

    def drop(self, collection: str) -> None:
        check_name(collection)
        with self._lock:
            path = self.root / collection
            if _read_layout(path) is None:
                raise not_found(collection)
            held = self._shards.pop(collection, None)
            if held is None:
                # Not ours: open it once so a collection another process is using is
                # refused (Conflict) instead of deleted under its feet.
                with _engine("open", collection):
                    qe.EdgeShard.load(str(path)).close()
            else:
                with held.lock:
                    held.closed = True
                    with _engine("close", collection):
                        held.shard.close()
            # Rename first: a crash during the recursive delete leaves a hidden folder,
            # never a collection with half its files.
            doomed = self.root / f".dropping-{collection}-{uuid.uuid4().hex}"
            os.rename(path, doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    # -- points --------------------------------------------------------------------------

    def upsert(self, collection: str, points: list[Point]) -> None:
        held = self._open(collection)
        clean = clean_points(collection, held.spec, points)
        if not clean:
            return
        with self._use_held(collection, "write to") as held:
            held.cache.clear()
            shard = held.shard
            for start in range(0, len(clean), UPSERT_SLICE):
                batch = [_point(p) for p in clean[start : start + UPSERT_SLICE]]
                shard.update(qe.UpdateOperation.upsert_points(batch))
            shard.flush()

    def delete(self, collection: str, flt: Filter) -> int:
        engine_filter = _filter(delete_conditions(collection, flt))
        assert engine_filter is not None  # conds is not None
        with self._use_held(collection, "delete from") as held:
            shard = held.shard
            n = shard.count(qe.CountRequest(exact=True, filter=engine_filter))
            if n:
                held.cache.clear()
                shard.update(qe.UpdateOperation.delete_points_by_filter(engine_filter))
                shard.flush()
        return n

    def query(self, collection: str, request: SearchRequest) -> list[Hit]:
        return self.query_batch(collection, [request])[0]

    def query_batch(self, collection: str, requests: list[SearchRequest]) -> list[list[Hit]]:
        """Several queries in one engine call: Edge plans them together (one pass over
        the segments) and the shard's lock is taken once, not once per query. With the
        point cache on, the engine returns ids and scores only; the points come from the
        cache, and those it lacks are read by id under the same lock."""
        held = self._open(collection)
        bare = self.cache_points > 0
        batch = qe.QueryBatchRequest(
            [self._engine_request(collection, held.spec, r, bare) for r in requests])
        with self._use_held(collection, "query") as held:
            found = held.shard.query_batch(batch)
            if bare:
                vectors = any(r.with_vectors for r in requests)
                keyed = [[(str(p.id), p.score) for p in ps] for ps in found]
                points = self._cached(held, [i for ks in keyed for i, _ in ks], vectors)
        if not bare:
            return [scored_hits(ps, held.spec, r.with_vectors)
                    for ps, r in zip(found, requests, strict=True)]
        return [[scored(points[i], score, r.with_vectors, r.exclude_payload)
                 for i, score in ks if i in points]  # absent only if deleted meanwhile
                for ks, r in zip(keyed, requests, strict=True)]

    def _cached(self, held: _Shard, ids: list[str], vectors: bool) -> dict[str, Hit]:
        """The converted points of ``ids`` (those that exist), from the cache or read by
        id; the caller holds the shard's lock."""
        out, missing = held.cache.lookup(ids, vectors)
        if missing:
            records = held.shard.retrieve(list[Any](missing), with_payload=True,
                                          with_vector=vectors)
            fresh = [compact(h) for h in plain_hits(records, held.spec if vectors else None)]
            held.cache.put(fresh, vectors)
            out.update((h.id, h) for h in fresh)
        return out

    def _engine_request(self, collection: str, spec: CollectionSpec,
                        request: SearchRequest, bare: bool = False) -> qe.QueryRequest:
        """The engine's form of ``request``; ``bare``: ids and scores only (the point
        cache supplies payloads and vectors)."""
        paths = clean_request(collection, spec, request)
        engine_filter = _filter(translate(request.filter))
        payload: bool | qe.PayloadSelector = (
            qe.PayloadSelector.Exclude(list(request.exclude_payload))
            if request.exclude_payload else True)
        with_vector = request.with_vectors
        if bare:
            payload, with_vector = False, False
        if len(paths) == 1:
            return qe.QueryRequest(
                limit=request.limit,
                query=_nearest(paths[0]),
                params=self._params if paths[0].dense is not None else None,
                filter=engine_filter,
                with_payload=payload,
                with_vector=with_vector,
            )
        fusion: qe.Fusion.Rrf | qe.Fusion.Dbsf = (
            qe.Fusion.Rrf(k=RRF_K) if request.fusion == "rrf" else qe.Fusion.Dbsf()
        )
        return qe.QueryRequest(
            limit=request.limit,
            # The filter goes into every prefetch too: filtering only the fused top
            # would let non-matching points use up each path's prefetch limit.
            prefetches=[
                qe.Prefetch(limit=p.limit, query=_nearest(p), filter=engine_filter,
                            params=self._params if p.dense is not None else None)
                for p in paths
            ],
            query=fusion,  # type: ignore[arg-type]
            filter=engine_filter,
            with_payload=payload,
            with_vector=with_vector,
        )

    def scroll(
        self, collection: str, flt: Filter | None = None, batch: int = 256
    ) -> Iterator[Hit]:
        check_batch(batch)
        self._open(collection)  # NotFound now, not on the first next()
        return self._pages(collection, _filter(translate(flt)), batch)

    def _pages(
        self, collection: str, engine_filter: qe.Filter | None, batch: int
    ) -> Iterator[Hit]:
        def fetch(offset: Any) -> tuple[Any, Any]:
            with self._use(collection, "scroll") as shard:
                return shard.scroll(
                    qe.ScrollRequest(
                        offset=offset,
                        limit=batch,
                        filter=engine_filter,
                        with_payload=True,
                        with_vector=False,
                    )
                )

        return paged_hits(fetch)

    def retrieve(self, collection: str, ids: list[str]) -> list[Hit]:
        if not ids:
            self._open(collection)
            return []
        # Through the cache even when it is off (a 0-point cache keeps nothing): one path.
        wanted = list(dict.fromkeys(ids))
        with self._use_held(collection, "retrieve") as held:
            points = self._cached(held, wanted, False)
        return [scored(points[i], 0.0, False) for i in wanted if i in points]

    def count(self, collection: str, flt: Filter | None = None) -> int:
        engine_filter = _filter(translate(flt))
        with self._use(collection, "count") as shard:
            return int(shard.count(qe.CountRequest(exact=True, filter=engine_filter)))

    def optimize(self, collection: str) -> None:
        """Add the filter keys' keyword indexes if missing, then build HNSW.

        The indexes are created here rather than in ``ensure``: each one costs a
        synced write (~0.1 s), which small collections that never reach
        ``optimize_after`` points do not need (a full scan of them is fast and exact),
        while large ones need them *before* HNSW is built, so the graph gets
        payload-aware links and restrictive filters (one ``doc_id``) keep their recall.
        """
        with self._use(collection, "optimize") as shard:
            indexed = shard.info().payload_schema
            for key in INDEXED_KEYS:
                if key not in indexed:
                    shard.update(
                        qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Keyword)
                    )
            shard.optimize()
            shard.flush()

    def close(self) -> None:
        with self._lock:
            held_all = list(self._shards.items())
            self._shards.clear()
            for name, held in held_all:
                with held.lock:
                    if held.closed:
                        continue
                    held.closed = True
                    with _engine("close", name):
                        held.shard.flush()
                        held.shard.close()

    # -- internals -----------------------------------------------------------------------

    def _open(self, collection: str) -> _Shard:
        """The open shard of ``collection``, loading it on first use."""
        check_name(collection)
        with self._lock:
            held = self._shards.get(collection)
            if held is not None:
                return held
            path = self.root / collection
            layout = _read_layout(path)
            if layout is None:
                raise not_found(collection)
            with _engine("open", collection):
                shard = qe.EdgeShard.load(str(path))
            held = _Shard(shard, layout.to_spec(), cache=PointCache(self.cache_points))
            self._shards[collection] = held
            return held

    @contextmanager
    def _use(self, collection: str, action: str) -> Iterator[qe.EdgeShard]:
        """The shard, locked for one call (see :meth:`_use_held`)."""
        with self._use_held(collection, action) as held:
            yield held.shard

    @contextmanager
    def _use_held(self, collection: str, action: str) -> Iterator[_Shard]:
        """The open shard (engine, spec, cache), locked for one call. A shard dropped or
        closed by another thread between lookup and lock reads as missing (or is
        reopened), never as a crash."""
        while True:
            held = self._open(collection)
            with held.lock:
                if held.closed:
                    if (self.root / collection / CONFIG_FILE).is_file():
                        continue  # closed by close(): reopen
                    raise not_found(collection)
                with _engine(action, collection):
                    yield held
                return
