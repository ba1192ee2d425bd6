"""Document records: how a store proves that a document is whole.

Every document (one version of one source: ``(source, doc_id)``) owns one vector-less
**record** point (``modality: record``, id from its doc id) that says how many points the
document has and in which state it is (:class:`~rag.types.RecordInfo`):

- ``writing``: written *before* the first of its points, so a write in flight is always
  visible as such to other writers, with the time it started;
- ``complete``: written after the last point, once the point count has been checked;
- ``deleting``: a tombstone written before the first point is removed.

Readers only believe ``complete`` records (records from before states existed count as
complete), and only when they are there: search drops hits of documents without one
(:meth:`Records.complete_doc_ids`), ``documents`` lists a document only when its record
is complete and its points are all there, and counts add up complete records. So a
process killed at any moment, or a delete interrupted half-way (qdrant-client's local
mode removes rows one by one), leaves a document that is either whole or invisible, and
the next writer of that source repairs or removes it.

**Several writers on one Qdrant server.** Writers of the same source never remove each
other's documents in flight: a writer removes a ``writing`` document of another version
only when it started more than ``ingest.stale_write_s`` ago (a crashed writer's
leftover). Of several ``complete`` versions of a source, the one completed last
(``written_at``, then doc id, so every writer agrees) wins, and each writer removes the
others when it finishes, itself included if it lost. Clocks of different machines only
decide *which* version wins a race, never whether one does. A store that only one writer
can open at a time (Qdrant Edge, qdrant-client's local path; ``exclusive``) skips the
waiting: the newest write is the winner, and anything else of the source goes.

Everything here is points and filters, so both store backends behave the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rag.errors import MmragError
from rag.payload import COMPLETE, DELETING, RECORD, WRITING, record_payload, record_point_id
from rag.store.base import VectorStore
from rag.types import MODALITIES, Filter, Point, RecordInfo

#: Every modality a document's own points can have (everything but its record).
CONTENT: list[str] = list(MODALITIES)


class WriteLost(MmragError):
    """The document was removed (a delete of its source) while it was being written."""


@dataclass(frozen=True)
class Version:
    """One document of a source, as its record describes it."""

    source: str
    doc_id: str
    record: RecordInfo
    mime: str = ""


class Records:
    """The record protocol over one :class:`~rag.store.VectorStore`."""

    def __init__(
        self,
        store: VectorStore,
        *,
        exclusive: bool = True,
        stale_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.exclusive = exclusive
        self.stale_s = stale_s
        self.clock = clock

    # --- reading --------------------------------------------------------------------------
    def versions(self, collection: str, source: str | None = None,
                 doc_ids: Iterable[str] | None = None) -> list[Version]:
        """The records of ``source`` (or of ``doc_ids``), in any state."""
        flt = Filter(modality=[RECORD], source=source,
                     doc_ids=sorted(set(doc_ids)) if doc_ids is not None else None)
        if flt.doc_ids == []:
            return []
        return [Version(h.source, h.doc_id, h.record, h.mime)
                for h in self.store.scroll(collection, flt) if h.record is not None]

    def complete_doc_ids(self, collection: str, doc_ids: Iterable[str]) -> set[str]:
        """Which of ``doc_ids`` have a complete record: what search may show."""
        wanted = {d for d in doc_ids if d}
        if not wanted:
            return set()
        # A record's id derives from its doc id: a lookup by id, not a filtered scan
        # (a lone search spent 15-25 ms scanning for its records).
        found = self.store.retrieve(collection, [record_point_id(d) for d in sorted(wanted)])
        return {h.doc_id for h in found
                if h.record is not None and h.record.complete and h.doc_id in wanted}

    def points_of(self, collection: str, source: str, doc_id: str) -> int:
        """How many points of the document are stored (its record not counted)."""
        return self.store.count(collection, Filter(source=source, doc_id=doc_id,
                                                   modality=CONTENT))

    def is_whole(self, collection: str, version: Version) -> bool:
        """A complete record over exactly the points it promises."""
        return version.record.complete and self.points_of(
            collection, version.source, version.doc_id) == version.record.points

    def complete_points(self, collection: str) -> int:
        """Points of complete documents, from their records alone (one record per
        document, so this reads documents, not points)."""
        return sum(max(v.record.points, 0) for v in self.versions(collection)
                   if v.record.complete)

    # --- writing --------------------------------------------------------------------------
    def _put(self, collection: str, source: str, doc_id: str, mime: str, points: int,
             tenant: str | None, state: str, at: float,
             pipeline: dict[str, str] | None = None) -> None:
        payload = record_payload(doc_id, source, mime, points, tenant, state, at, pipeline)
        self.store.upsert(collection, [Point(id=record_point_id(doc_id), vectors={},
                                             payload=payload)])

    def begin(self, collection: str, source: str, doc_id: str, mime: str, points: int,
              tenant: str | None) -> None:
        """Announce a write before its first point lands."""
        self._put(collection, source, doc_id, mime, points, tenant, WRITING, self.clock())

    def finish(self, collection: str, source: str, doc_id: str, mime: str, points: int,
               tenant: str | None, pipeline: dict[str, str] | None = None) -> None:
        """Mark the document complete once all its points are stored. Raises
        :class:`WriteLost` when a delete removed it meanwhile (its ``writing`` record is
        gone or became a tombstone): then nothing of it is left to complete."""
        mine = [v for v in self.versions(collection, source) if v.doc_id == doc_id]
        state = mine[0].record.state if mine else None
        if state is None or state == DELETING:
            self.remove(collection, source, doc_id)
            raise WriteLost(
                f"{source}: removed while it was being written (a delete of this source "
                "ran at the same time); ingest it again to store it"
            )
        stored = self.points_of(collection, source, doc_id)
        if stored != points:
            self.remove(collection, source, doc_id)
            raise WriteLost(
                f"{source}: {stored} of its {points} points are in the store after writing "
                "them (another process removed some meanwhile); ingest it again"
            )
        if state != COMPLETE:  # complete already: another writer of the same bytes
            self._put(collection, source, doc_id, mime, points, tenant, COMPLETE,
                      self.clock(), pipeline)

    def remove(self, collection: str, source: str, doc_id: str) -> int:
        """Remove one document: tombstone first, then its points, then the tombstone, so
        an interruption never leaves a complete record over missing points. Returns the
        points removed (its record not counted)."""
        found = [v for v in self.versions(collection, source) if v.doc_id == doc_id]
        for v in found:
            self._put(collection, source, doc_id, "", v.record.points, None, DELETING,
                      self.clock())
        removed = self.store.delete(collection, Filter(source=source, doc_id=doc_id,
                                                       modality=CONTENT))
        if found:
            self.store.delete(collection, Filter(source=source, doc_id=doc_id,
                                                 modality=[RECORD]))
        return removed

    def remove_source(self, collection: str, source: str) -> tuple[int, int]:
        """Remove every document of ``source`` (a user's delete): all records become
        tombstones, then every point of the source goes, then the tombstones. Returns
        (points removed, documents that had records)."""
        found = self.versions(collection, source)
        for v in found:
            self._put(collection, source, v.doc_id, "", v.record.points, None, DELETING,
                      self.clock())
        removed = self.store.delete(collection, Filter(source=source, modality=CONTENT))
        if found:
            self.store.delete(collection, Filter(source=source, modality=[RECORD]))
        return removed, len(found)

    def settle(self, collection: str, source: str, doc_id: str) -> int:
        """After ``doc_id`` of ``source`` is complete (or found complete): remove the
        source's other versions by the rules in the module docstring. Returns the points
        of other versions removed."""
        now = self.clock()
        versions = self.versions(collection, source)
        complete = [v for v in versions if v.record.complete]
        winner = doc_id
        if not self.exclusive:
            best = max(complete, key=lambda v: (v.record.written_at, v.doc_id), default=None)
            if best is not None:
                winner = best.doc_id
        removed = 0
        keep = {winner}
        for v in versions:
            if v.doc_id == winner:
                continue
            in_flight = (v.record.state == WRITING and not self.exclusive
                         and now - v.record.written_at < self.stale_s)
            if in_flight:
                keep.add(v.doc_id)
                continue
            n = self.remove(collection, source, v.doc_id)
            removed += n if v.doc_id != doc_id else 0
        if self.exclusive:
            # Points of no record at all: an interrupted delete or a write from before
            # records had states. Nobody else can be writing here.
            removed += self.store.delete(collection, Filter(
                source=source, modality=CONTENT, exclude_doc_ids=sorted(keep)))
        return removed


__all__ = ["CONTENT", "DELETING", "Records", "Version", "WriteLost"]
