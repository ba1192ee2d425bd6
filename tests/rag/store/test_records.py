"""The record protocol (rag/store/records.py) on every store backend, with hand-made
points: what a reader sees at every step of a write and a delete, interrupted or not, and
several writers of one source on one store (as on a Qdrant server)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rag.payload import DELETING, RECORD, WRITING, chunk_payload
from rag.store.base import VectorStore
from rag.store.records import CONTENT, Records, WriteLost
from rag.types import TEXT, Chunk, CollectionSpec, Filter, Point
from tests.rag.store.test_store_contract import BACKENDS

SPEC = CollectionSpec(dense={TEXT: 4}, sparse=())
C = "docs"


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    s = BACKENDS[request.param](tmp_path)
    s.ensure(C, SPEC)
    yield s
    s.close()


def points(source: str, doc_id: str, n: int) -> list[Point]:
    """``n`` points of one document, alternately ``text`` and ``image`` (so a test can
    remove half of them with a filter)."""
    out = []
    for i in range(n):
        chunk = Chunk(doc_id=doc_id, source=source, mime="text/plain",
                      modality="text" if i % 2 == 0 else "image",
                      page=1, chunk=i, text=f"{doc_id} chunk {i}")
        pid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc_id}/1/{i}"))
        out.append(Point(id=pid, vectors={TEXT: [1.0, float(i % 3), 0.5, 0.0]},
                         payload=chunk_payload(chunk)))
    return out


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def write(records: Records, source: str, doc_id: str, n: int) -> None:
    records.begin(C, source, doc_id, "text/plain", n, None)
    records.store.upsert(C, points(source, doc_id, n))
    records.finish(C, source, doc_id, "text/plain", n, None)
    records.settle(C, source, doc_id)


def visible(store: VectorStore, records: Records) -> dict[str, int]:
    """doc id -> points a search could return (content points of complete documents)."""
    docs: dict[str, int] = {}
    for hit in store.scroll(C, Filter(modality=CONTENT)):
        docs[hit.doc_id] = docs.get(hit.doc_id, 0) + 1
    whole = records.complete_doc_ids(C, docs)
    return {d: n for d, n in docs.items() if d in whole}


def test_a_write_is_invisible_until_its_record_is_complete(store: VectorStore) -> None:
    records = Records(store)
    records.begin(C, "a.txt", "d1", "text/plain", 5, None)
    store.upsert(C, points("a.txt", "d1", 5))
    assert visible(store, records) == {}
    assert records.complete_points(C) == 0
    [v] = records.versions(C, "a.txt")
    assert v.record.state == WRITING and v.record.points == 5
    records.finish(C, "a.txt", "d1", "text/plain", 5, None)
    assert visible(store, records) == {"d1": 5}
    assert records.complete_points(C) == 5
    assert records.is_whole(C, records.versions(C, "a.txt")[0])


def test_remove_hides_the_document_before_its_first_point_goes(store: VectorStore) -> None:
    records = Records(store)
    write(records, "a.txt", "d1", 6)
    # The first step of a delete alone (as if the process died right after it):
    records._put(C, "a.txt", "d1", "", 6, None, DELETING, 0.0)
    assert visible(store, records) == {} and records.complete_points(C) == 0
    # ... and half of the points removed too (qdrant-client local mode deletes row by row):
    assert store.delete(C, Filter(doc_id="d1", modality=["image"])) == 3
    assert visible(store, records) == {}
    # The next writer of the source finishes the delete.
    write(records, "a.txt", "d2", 2)
    assert visible(store, records) == {"d2": 2}
    assert store.count(C, Filter(doc_id="d1")) == 0


def test_a_record_over_missing_points_is_not_whole(store: VectorStore) -> None:
    records = Records(store)
    write(records, "a.txt", "d1", 6)
    [v] = records.versions(C, "a.txt")
    store.delete(C, Filter(doc_id="d1", modality=["image"]))
    assert v.record.complete and not records.is_whole(C, v)


def test_a_delete_during_a_write_makes_the_write_fail_cleanly(store: VectorStore) -> None:
    records = Records(store)
    records.begin(C, "a.txt", "d1", "text/plain", 4, None)
    store.upsert(C, points("a.txt", "d1", 4))
    records.remove_source(C, "a.txt")  # a user's delete, from another process
    store.upsert(C, points("a.txt", "d1", 4)[:1])  # a straggling batch of the writer
    with pytest.raises(WriteLost, match="removed while it was being written"):
        records.finish(C, "a.txt", "d1", "text/plain", 4, None)
    assert store.count(C, Filter(source="a.txt")) == 0


def test_stale_writes_are_removed_and_young_ones_left_to_their_writer(
        store: VectorStore) -> None:
    clock = Clock()
    records = Records(store, exclusive=False, stale_s=100.0, clock=clock)
    records.begin(C, "a.txt", "crashed", "text/plain", 3, None)
    store.upsert(C, points("a.txt", "crashed", 2))
    clock.t += 500  # that writer died long ago
    records.begin(C, "a.txt", "young", "text/plain", 3, None)
    store.upsert(C, points("a.txt", "young", 1))
    write(records, "a.txt", "mine", 2)
    assert store.count(C, Filter(doc_id="crashed")) == 0
    assert store.count(C, Filter(doc_id="young")) == 2  # its record and its one point
    assert visible(store, records) == {"mine": 2}


def steps(records: Records, store: VectorStore, doc_id: str, n: int
          ) -> list[Callable[[], None]]:
    src = "shared.txt"
    batch = points(src, doc_id, n)
    return [
        lambda: records.begin(C, src, doc_id, "text/plain", n, None),
        lambda: store.upsert(C, batch[: n // 2]),
        lambda: store.upsert(C, batch[n // 2 :]),
        lambda: records.finish(C, src, doc_id, "text/plain", n, None),
        lambda: records.settle(C, src, doc_id),
    ]


def interleavings(a: int, b: int) -> Iterator[tuple[int, ...]]:
    """Every order of a steps of writer 0 and b steps of writer 1 (as 0/1 sequences)."""
    for ones in itertools.combinations(range(a + b), b):
        yield tuple(1 if i in ones else 0 for i in range(a + b))


def test_two_writers_of_one_source_never_remove_each_others_points(tmp_path: Path) -> None:
    """Two pipelines write different versions of one source into one store (a Qdrant
    server: not exclusive) in every possible interleaving of their steps; each time
    exactly one version is left, whole, and it is the one completed last."""
    from rag.store.qdrant import QdrantStore

    orders = list(interleavings(5, 5))
    assert len(orders) == 252
    for order in orders:
        store = QdrantStore(path=":memory:")
        store.ensure(C, SPEC)
        clock = Clock()  # one clock: the servers' machines agree on time here
        w = [Records(store, exclusive=False, clock=clock) for _ in range(2)]
        plans = [steps(w[0], store, "v0", 4), steps(w[1], store, "v1", 6)]
        finished = ""
        for who in order:
            step = plans[who].pop(0)
            step()
            if len(plans[who]) == 1:  # that was its finish()
                finished = f"v{who}"
        left = w[0].versions(C, "shared.txt")
        assert [v.doc_id for v in left] == [finished], (order, left)
        assert w[0].is_whole(C, left[0]), order
        assert store.count(C, Filter(source="shared.txt", modality=CONTENT)) == (
            4 if finished == "v0" else 6), order
        store.close()


def test_complete_doc_ids_reads_only_records(store: VectorStore) -> None:
    records = Records(store)
    write(records, "a.txt", "d1", 2)
    store.upsert(C, points("b.txt", "d2", 2))  # no record at all: never complete
    assert records.complete_doc_ids(C, ["d1", "d2", ""]) == {"d1"}
    assert records.complete_doc_ids(C, []) == set()
    assert {h.modality for h in store.scroll(C, Filter(doc_id="d1"))} == {"text", "image", RECORD}
