"""The vector store protocol. Backends: ``edge`` (Qdrant Edge in-process), ``qdrant``
(qdrant-client against a server, or its local mode). One contract test class runs
against both so they cannot drift apart (tests/rag/store/test_store_contract.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from rag.types import CollectionSpec, Filter, Hit, Point, SearchRequest


class VectorStore(Protocol):
    def collections(self) -> list[str]:
        """Names of existing collections, sorted."""
        ...

    def exists(self, collection: str) -> bool:
        """Whether ``collection`` exists: what every query checks first, so it costs one
        lookup, not a listing of every collection."""
        ...

    def ensure(self, collection: str, spec: CollectionSpec) -> None:
        """Create the collection if missing. Raise ``Conflict`` if it exists with other
        vector names or sizes (say which, and that a new collection name is needed)."""
        ...

    def spec(self, collection: str) -> CollectionSpec:
        """The vectors the collection was created with; ``NotFound`` if it is missing."""
        ...

    def drop(self, collection: str) -> None:
        """Delete the collection and all its points; ``NotFound`` if missing."""
        ...

    def upsert(self, collection: str, points: list[Point]) -> None:
        """Insert or replace points by id. A point may carry any subset of the vectors."""
        ...

    def delete(self, collection: str, flt: Filter) -> int:
        """Delete the points matching ``flt`` (never all points for an empty filter:
        raise ``BadInput``); return how many were deleted."""
        ...

    def query(self, collection: str, request: SearchRequest) -> list[Hit]:
        """Prefetch each path, fuse (RRF/DBSF) inside the engine, return hits best first.
        With one path, no fusion: plain nearest-neighbour scores. ``with_vectors`` fills
        ``Hit.vectors`` (dense as list[float] or a float32 array, sparse as SparseVector)."""
        ...

    def query_batch(self, collection: str, requests: list[SearchRequest]) -> list[list[Hit]]:
        """:meth:`query` for each request, in one engine call (concurrent searches are
        batched by the pipeline); results in the same order."""
        ...

    def scroll(
        self, collection: str, flt: Filter | None = None, batch: int = 256
    ) -> Iterator[Hit]:
        """Every matching point (score 0), in id order, lazily."""
        ...

    def retrieve(self, collection: str, ids: list[str]) -> list[Hit]:
        """The points with these ids that exist (score 0, no vectors), in any order: a
        lookup by id, for points whose ids are derived (document records)."""
        ...

    def count(self, collection: str, flt: Filter | None = None) -> int: ...

    def optimize(self, collection: str) -> None:
        """Build indexes (HNSW) after large ingests; a no-op where the engine does it."""
        ...

    def close(self) -> None: ...
