"""Converted points of one open Edge shard, by id: what a search reads again and again.

Why: a search's 50 fused candidates cost Qdrant Edge far more to read than to find (on
the example corpus x 6: 0.22 ms for the query with neither payload nor vectors, 1.27 ms
with them), and turning them into Python objects costs as much again; the record check
and the final hits' OCR boxes read points by id once more. All of it holds the GIL, so
it is what limits a busy server. The points a workload touches are few and repeat, so
the shard keeps each one it read, converted (a :class:`~rag.types.Hit`, dense vectors as
float32 arrays), and the engine only ranks ids.

Why it cannot go stale: a shard is open in one process only (its WAL lock), and every
write of this process goes through the store, which clears the cache under the shard's
lock before writing. The cache belongs to the open shard, so a shard closed for another
process (the store gate) and opened again starts empty. Reads fill the cache under the
same lock as the engine call that found the ids, so a write cannot slip in between.
Bounded by ``store.cache_points`` (least recently used first out); 0 turns it off.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import MISSING, fields
from typing import Any, cast

import numpy as np

from rag.payload import META
from rag.types import Hit, Vector


class PointCache:
    """An LRU of converted points; every method runs under the shard's lock."""

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        # id -> (the hit with score 0, whether it carries the point's vectors)
        self._hits: OrderedDict[str, tuple[Hit, bool]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    def clear(self) -> None:
        self._hits.clear()

    def lookup(self, ids: Iterable[str], vectors: bool) -> tuple[dict[str, Hit], list[str]]:
        """The cached ones of ``ids`` (marked as just used), and the ids to read: not
        cached, or cached without vectors when ``vectors``; each id once."""
        found: dict[str, Hit] = {}
        missing: dict[str, None] = {}
        for i in ids:
            entry = self._hits.get(i)
            if entry is None or (vectors and not entry[1]):
                missing[i] = None
            else:
                self._hits.move_to_end(i)
                found[i] = entry[0]
        return found, list(missing)

    def put(self, hits: Iterable[Hit], vectors: bool) -> None:
        if self.limit == 0:
            return
        for h in hits:
            self._hits[h.id] = (h, vectors)
            self._hits.move_to_end(h.id)
        while len(self._hits) > self.limit:
            self._hits.popitem(last=False)


def compact(hit: Hit) -> Hit:
    """``hit`` with its dense vectors as float32 arrays: a 384-d vector as Python floats
    takes 12 KB, as an array 1.5 KB, and the reranker stacks arrays without converting."""
    # Typed as Vector (list[float]) by the protocol; an array is read the same way by
    # every consumer (the reranker stacks them, tests compare with approx).
    hit.vectors = {name: (cast(Vector, np.asarray(v, dtype=np.float32))
                          if isinstance(v, list) else v)
                   for name, v in hit.vectors.items()}
    return hit


def scored(template: Hit, score: float, vectors: bool, leave_out: tuple[str, ...] = ()) -> Hit:
    """A caller's own copy of a cached hit, with this query's score: callers set scores,
    boxes and vectors on their hits, never on the cached one. (A copy of the instance
    dict: a tenth of ``copy.copy``'s cost, for 50 candidates a search.) The fields of
    payload keys in ``leave_out`` read as empty, as the engine would leave them."""
    hit: Any = object.__new__(Hit)
    hit.__dict__.update(template.__dict__)
    hit.score = float(score)
    hit.vectors = dict(template.vectors) if vectors else {}
    hit.metadata = dict(template.metadata)
    for key in leave_out:
        name = _FIELD.get(key, key)
        if name in _EMPTY:
            setattr(hit, name, _EMPTY[name]())
    return hit


# Payload keys stored under another name on a Hit.
_FIELD = {META: "metadata"}
# Hit field -> its empty value's factory, for the fields payload keys are read into.
_EMPTY: dict[str, Any] = {
    f.name: (f.default_factory if f.default_factory is not MISSING
             else (lambda d=f.default: d))
    for f in fields(Hit) if f.name not in ("id", "score", "vectors", "record")
    and (f.default is not MISSING or f.default_factory is not MISSING)
}
