"""Checks and messages every store backend shares.

The backends validate names, specs, points and requests here *before* calling their
engine, for two reasons: the engines disagree about what they reject (qdrant-client's
local mode refuses duplicate sparse indices, Qdrant Edge silently keeps them) and they
word their errors in their own terms. Checking up front gives one behaviour and one
message per mistake, typed as our errors, whichever backend runs.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np

from rag.errors import BadInput, Conflict, NotFound
from rag.payload import hit_from_payload
from rag.store._filters import Conditions, translate
from rag.types import CollectionSpec, Filter, Hit, Point, SearchRequest, SparseVector, Vector

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# RRF ranking constant. Qdrant's server and qdrant-client's local mode default to 2;
# Qdrant Edge wants it explicitly, so both backends use this one value and fused scores
# agree across backends.
RRF_K = 2

# Engine upserts are sent in slices of this many points to bound the memory of one call.
UPSERT_SLICE = 1024

COSINE = "cosine"
IDF = "idf"


def check_name(collection: str) -> str:
    """Refuse names that are unsafe as directory names or that Qdrant would reject."""
    if not isinstance(collection, str) or not COLLECTION_NAME.match(collection):
        raise BadInput(
            f"invalid collection name {collection!r}: use 1-64 letters, digits, '_', '.' "
            "or '-', starting with a letter or digit"
        )
    return collection


def not_found(collection: str) -> NotFound:
    return NotFound(
        f"collection {collection!r} does not exist; create it by ingesting into it: "
        f"mmrag ingest PATH --collection {collection}"
    )


def check_spec(spec: CollectionSpec) -> None:
    """A spec the engines can create: at least one vector, positive sizes, no name used
    for both a dense and a sparse vector."""
    if not spec.dense and not spec.sparse:
        raise BadInput("a collection needs at least one dense or sparse vector")
    for name, size in spec.dense.items():
        if not name or not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise BadInput(f"dense vector {name!r} needs a positive integer size, got {size!r}")
    for name in spec.sparse:
        if not name:
            raise BadInput("sparse vector names must be non-empty")
    both = sorted(set(spec.dense) & set(spec.sparse))
    if both:
        raise BadInput(f"vector name(s) {', '.join(both)} used for both dense and sparse")
    if len(set(spec.sparse)) != len(spec.sparse):
        raise BadInput(f"sparse vector names repeat: {list(spec.sparse)}")


@dataclass
class Layout:
    """What an engine reports about an existing collection, in neutral terms: dense
    name -> (size, distance) and sparse name -> modifier, lower-cased strings."""

    dense: dict[str, tuple[int, str]] = field(default_factory=dict)
    sparse: dict[str, str | None] = field(default_factory=dict)

    def to_spec(self) -> CollectionSpec:
        return CollectionSpec(
            dense={name: size for name, (size, _) in sorted(self.dense.items())},
            sparse=tuple(sorted(self.sparse)),
        )

    def differences(self, spec: CollectionSpec) -> list[str]:
        """Human-readable reasons the existing collection cannot serve ``spec``."""
        diffs: list[str] = []
        for name in sorted(set(self.dense) | set(spec.dense)):
            have = self.dense.get(name)
            want = spec.dense.get(name)
            if have is None:
                diffs.append(f"dense vector {name!r} (size {want}) is missing")
            elif want is None:
                diffs.append(f"dense vector {name!r} (size {have[0]}) exists but is not wanted")
            elif have[0] != want:
                diffs.append(f"dense vector {name!r} has size {have[0]}, wanted {want}")
            elif have[1] != COSINE:
                diffs.append(f"dense vector {name!r} uses {have[1]} distance, wanted cosine")
        for name in sorted(set(self.sparse) | set(spec.sparse)):
            if name not in self.sparse:
                diffs.append(f"sparse vector {name!r} is missing")
            elif name not in spec.sparse:
                diffs.append(f"sparse vector {name!r} exists but is not wanted")
            elif self.sparse[name] != IDF:
                diffs.append(f"sparse vector {name!r} lacks the IDF modifier")
        return diffs


def conflict(collection: str, diffs: Sequence[str]) -> Conflict:
    return Conflict(
        f"collection {collection!r} already exists with other vectors: {'; '.join(diffs)}. "
        "Its points cannot be mixed with these; choose a new collection name (or drop "
        "this collection first)"
    )


def point_id(raw: Any) -> str:
    """Canonical UUID string: ids are UUIDv5 by design, and canonical form keeps the
    id we hand out equal to the id the engine hands back."""
    try:
        return str(uuid.UUID(str(raw)))
    except ValueError:
        raise BadInput(f"point id {raw!r} is not a UUID") from None


def dense_list(name: str, vector: Any, size: int) -> list[float]:
    """The vector as a list of floats of the collection's size (numpy arrays welcome).

    Goes through numpy because this runs for every vector of every ingest: a
    Python-level float loop would dominate insert time at 100k x 384 dimensions.
    """
    if isinstance(vector, SparseVector):
        raise BadInput(f"vector {name!r} is dense; got a sparse vector")
    try:
        array = np.asarray(vector, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInput(f"vector {name!r} is not a list of numbers") from None
    if array.ndim != 1 or array.shape[0] != size:
        raise BadInput(f"vector {name!r} needs {size} dimensions, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise BadInput(f"vector {name!r} contains NaN or infinite values")
    values: list[float] = array.tolist()
    return values


def sparse_parts(name: str, vector: Any) -> tuple[list[int], list[float]]:
    """Indices and values of a sparse vector, checked the way the strictest engine does."""
    if not isinstance(vector, SparseVector):
        raise BadInput(f"vector {name!r} is sparse; pass a rag.types.SparseVector")
    indices = [int(i) for i in vector.indices]
    values = [float(v) for v in vector.values]
    if len(indices) != len(values):
        raise BadInput(
            f"sparse vector {name!r}: {len(indices)} indices but {len(values)} values"
        )
    if len(set(indices)) != len(indices):
        raise BadInput(f"sparse vector {name!r} repeats an index")
    if any(i < 0 or i > 0xFFFFFFFF for i in indices):
        raise BadInput(f"sparse vector {name!r} has an index outside 0..2^32-1")
    if not all(math.isfinite(v) for v in values):
        raise BadInput(f"sparse vector {name!r} contains NaN or infinite values")
    return indices, values


def unknown_vector(name: str, spec: CollectionSpec, collection: str) -> BadInput:
    names = sorted([*spec.dense, *spec.sparse])
    return BadInput(
        f"collection {collection!r} has no vector named {name!r}; "
        f"it has: {', '.join(names) or 'none'}"
    )


@dataclass
class CleanPoint:
    """A point checked against the collection's spec, in plain Python values that each
    backend wraps in its engine's point class."""

    id: str
    dense: dict[str, list[float]]
    sparse: dict[str, tuple[list[int], list[float]]]
    payload: dict[str, Any]


def clean_points(
    collection: str, spec: CollectionSpec, points: Iterable[Point]
) -> list[CleanPoint]:
    """Every vector of every point named in the spec and shaped as the spec says.

    Checking the whole batch before writing any of it means a bad point fails the call
    without leaving half a batch behind.
    """
    out: list[CleanPoint] = []
    for point in points:
        if not isinstance(point.payload, dict):
            raise BadInput(f"payload of point {point.id!r} must be a dict")
        dense: dict[str, list[float]] = {}
        sparse: dict[str, tuple[list[int], list[float]]] = {}
        for name, vector in point.vectors.items():
            if name in spec.dense:
                dense[name] = dense_list(name, vector, spec.dense[name])
            elif name in spec.sparse:
                sparse[name] = sparse_parts(name, vector)
            else:
                raise unknown_vector(name, spec, collection)
        out.append(CleanPoint(point_id(point.id), dense, sparse, point.payload))
    return out


@dataclass(frozen=True)
class CleanPath:
    """One checked retrieval path: ``dense`` or ``sparse`` is set, never both."""

    using: str
    limit: int
    dense: list[float] | None = None
    sparse: tuple[list[int], list[float]] | None = None


def clean_request(
    collection: str, spec: CollectionSpec, request: SearchRequest
) -> list[CleanPath]:
    """The request's paths checked against the spec, so a typo in a vector name is a
    ``BadInput`` naming it (and the names that exist), not an engine error."""
    if not request.paths:
        raise BadInput("a search needs at least one vector path")
    if request.limit < 1:
        raise BadInput(f"search limit must be at least 1, got {request.limit}")
    if request.fusion not in ("rrf", "dbsf"):
        raise BadInput(f"unknown fusion {request.fusion!r}; choose rrf or dbsf")
    paths: list[CleanPath] = []
    for path in request.paths:
        if path.limit < 1:
            raise BadInput(f"prefetch limit of path {path.using!r} must be at least 1")
        if path.using in spec.dense:
            vector = dense_list(path.using, path.vector, spec.dense[path.using])
            paths.append(CleanPath(path.using, path.limit, dense=vector))
        elif path.using in spec.sparse:
            parts = sparse_parts(path.using, path.vector)
            paths.append(CleanPath(path.using, path.limit, sparse=parts))
        else:
            raise unknown_vector(path.using, spec, collection)
    return paths


def to_sparse(indices: Iterable[Any], values: Iterable[Any]) -> SparseVector:
    return SparseVector(tuple(int(i) for i in indices), tuple(float(v) for v in values))


def from_engine_vectors(raw: Any, spec: CollectionSpec) -> dict[str, Vector]:
    """Engine vectors -> ours: dense as list[float], sparse as SparseVector. Engines
    return their own sparse classes; anything with ``indices``/``values`` converts."""
    out: dict[str, Vector] = {}
    if not isinstance(raw, dict):
        return out
    for name, vector in raw.items():
        if hasattr(vector, "indices") and hasattr(vector, "values"):
            out[name] = SparseVector(tuple(vector.indices), tuple(vector.values))
        elif name in spec.dense or isinstance(vector, list):
            # Both engines hand dense vectors over as lists of floats already; copying
            # 50 candidates x 3 paths element by element cost more than the query.
            out[name] = vector if type(vector) is list else [float(v) for v in vector]
    return out


def scored_hits(points: Iterable[Any], spec: CollectionSpec, with_vectors: bool) -> list[Hit]:
    """Our hits from either engine's scored points (both have id, score, payload, vector)."""
    return [
        hit_from_payload(
            str(p.id),
            p.score,
            p.payload or {},
            from_engine_vectors(p.vector, spec) if with_vectors else None,
        )
        for p in points
    ]


def plain_hits(records: Iterable[Any], spec: CollectionSpec | None = None) -> list[Hit]:
    """Engine records (scroll pages, lookups by id) as hits: score 0; with ``spec``, the
    vectors they were read with, else none."""
    return [hit_from_payload(str(r.id), 0.0, r.payload or {},
                             from_engine_vectors(r.vector, spec) if spec else None)
            for r in records]


def paged_hits(fetch: Callable[[Any], tuple[Sequence[Any], Any]]) -> Iterator[Hit]:
    """Scroll pages as hits (score 0). ``fetch(offset)`` reads one page under the backend's
    lock and returns (records, next offset); pages are yielded after it returns, so a
    paused generator never holds the lock."""
    offset: Any = None
    while True:
        records, offset = fetch(offset)
        yield from plain_hits(records)
        if offset is None or not records:
            return


# --- preconditions every backend checks the same way ------------------------------------


def delete_conditions(collection: str, flt: Filter) -> Conditions:
    """The conditions of a delete; an empty filter is refused (it would delete all)."""
    check_name(collection)
    conds = translate(flt)
    if conds is None:
        raise BadInput(
            f"refusing to delete from {collection!r} with an empty filter (it would "
            "delete every point); give a filter such as doc_id or source, or drop "
            "the collection"
        )
    return conds


def check_batch(batch: int) -> None:
    if batch < 1:
        raise BadInput(f"scroll batch must be at least 1, got {batch}")


class StoreBase:
    """What every backend does the same way: close on leaving a ``with`` block."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
