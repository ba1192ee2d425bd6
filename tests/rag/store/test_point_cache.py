"""The Edge store's point cache (rag/store/point_cache.py): searches read candidates
from memory, and nothing a write changed is ever served from it. The contract tests run
every store behaviour with the cache off and with a 2-point cache as well."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.store.edge import EdgeStore
from rag.types import (
    BM25,
    TEXT,
    CollectionSpec,
    Filter,
    Point,
    SearchRequest,
    SparseVector,
    VectorQuery,
)

C = "cached"
SPEC = CollectionSpec(dense={TEXT: 4}, sparse=(BM25,))
BOX = {"text": "Total 42", "box": [0.1, 0.2, 0.5, 0.3], "confidence": 0.9}


def pid(n: int) -> str:
    return f"00000000-0000-0000-0000-{n:012d}"


def unit(*xs: float) -> list[float]:
    v = np.asarray(xs, dtype=np.float64)
    return list(v / np.linalg.norm(v))


def pt(n: int, text: str, vec: list[float], **payload: object) -> Point:
    return Point(pid(n), {TEXT: vec, BM25: SparseVector((n,), (1.0,))},
                 {"doc_id": f"d{n}", "source": f"s{n}.md", "modality": "text", "page": 1,
                  "chunk": 0, "text": text, "meta": {"n": n}, **payload})


def req(vec: list[float], limit: int = 10, vectors: bool = True) -> SearchRequest:
    return SearchRequest(paths=[VectorQuery(using=TEXT, vector=vec, limit=limit),
                                VectorQuery(using=BM25, vector=SparseVector((1, 2), (1.0, 1.0)),
                                            limit=limit)],
                         limit=limit, with_vectors=vectors)


@pytest.fixture
def store(tmp_path: Path) -> EdgeStore:
    s = EdgeStore(tmp_path / "edge")
    s.ensure(C, SPEC)
    s.upsert(C, [pt(i, f"chunk {i}", unit(1, i, 0, 0), boxes=[BOX]) for i in range(1, 6)])
    return s


def cache_size(store: EdgeStore) -> int:
    return len(store._shards[C].cache)


def test_a_repeated_search_is_served_from_memory_with_the_engines_answer(
        store: EdgeStore, tmp_path: Path) -> None:
    q = req(unit(1, 2, 0, 0))
    first = store.query(C, q)
    assert cache_size(store) == 5
    again = store.query(C, q)
    plain = EdgeStore(tmp_path / "edge", cache_points=0)
    store.close()
    reference = plain.query(C, q)
    for hits in (first, again):
        assert [(h.id, h.score, h.text, h.doc_id, h.metadata) for h in hits] == [
            (h.id, h.score, h.text, h.doc_id, h.metadata) for h in reference]
        for h, r in zip(hits, reference, strict=True):
            assert np.allclose(h.vectors[TEXT], r.vectors[TEXT])
            assert h.vectors[BM25] == r.vectors[BM25]
            assert [b.text for b in h.boxes] == ["Total 42"]
    plain.close()


def test_every_write_is_seen_by_the_next_search_and_lookup(store: EdgeStore) -> None:
    q = req(unit(1, 2, 0, 0))
    before = {h.id: h for h in store.query(C, q)}
    assert before[pid(2)].text == "chunk 2"
    # Same id, new text and a new vector: the cached copy must not be served.
    store.upsert(C, [pt(2, "rewritten", unit(0, 0, 0, 1))])
    assert cache_size(store) == 0
    after = {h.id: h for h in store.query(C, q)}
    assert after[pid(2)].text == "rewritten"
    assert np.allclose(after[pid(2)].vectors[TEXT], unit(0, 0, 0, 1))
    assert after[pid(2)].boxes == [] or list(after[pid(2)].boxes) == []
    (looked_up,) = store.retrieve(C, [pid(2)])
    assert looked_up.text == "rewritten"
    # Deleted points disappear from searches and lookups alike.
    assert store.delete(C, Filter(doc_id="d3")) == 1
    assert pid(3) not in {h.id for h in store.query(C, q)}
    assert store.retrieve(C, [pid(3), pid(4)])[0].id == pid(4)
    assert len(store.retrieve(C, [pid(3), pid(4)])) == 1


def test_another_process_writing_while_the_shard_was_closed_is_seen(
        store: EdgeStore, tmp_path: Path) -> None:
    """The store gate closes the shard before another process may open it; the cache
    goes with the open shard."""
    q = req(unit(1, 2, 0, 0))
    assert {h.text for h in store.query(C, q)} >= {"chunk 1"}
    store.close()
    other = EdgeStore(tmp_path / "edge")
    other.upsert(C, [pt(1, "written elsewhere", unit(1, 2, 0, 0))])
    other.close()
    texts = {h.id: h.text for h in store.query(C, q)}
    assert texts[pid(1)] == "written elsewhere"
    assert store.retrieve(C, [pid(1)])[0].text == "written elsewhere"
    store.close()


def test_callers_changing_their_hits_do_not_change_the_next_search(store: EdgeStore) -> None:
    q = req(unit(1, 2, 0, 0))
    for h in store.query(C, q):
        h.score = -1.0
        h.text = "changed"
        h.boxes = []
        h.vectors[TEXT] = [0.0] * 4
        h.metadata["n"] = "changed"
    for h in store.query(C, q):
        assert h.score != -1.0 and h.text.startswith("chunk")
        assert [b.text for b in h.boxes] == ["Total 42"]
        assert h.metadata["n"] != "changed"
        assert float(np.linalg.norm(np.asarray(h.vectors[TEXT]))) == pytest.approx(1.0)


def test_left_out_keys_and_vectors_read_as_empty_from_the_cache(store: EdgeStore) -> None:
    q = req(unit(1, 2, 0, 0))
    store.query(C, q)  # everything cached, boxes and vectors included
    lean = store.query(C, replace(q, with_vectors=False, exclude_payload=("boxes", "meta")))
    assert lean and all(h.vectors == {} and list(h.boxes) == [] and h.metadata == {}
                        for h in lean)
    assert all(h.text.startswith("chunk") for h in lean)


def test_the_cache_is_bounded_and_a_small_one_still_answers_in_full(tmp_path: Path) -> None:
    small = EdgeStore(tmp_path / "edge", cache_points=3)
    small.ensure(C, SPEC)
    small.upsert(C, [pt(i, f"chunk {i}", unit(1, i, 0, 0)) for i in range(1, 21)])
    for _ in range(2):
        hits = small.query(C, req(unit(1, 2, 0, 0), limit=20))
        assert len(hits) == 20 and len({h.id for h in hits}) == 20
        assert all(h.text == f"chunk {int(h.id[-12:])}" for h in hits)
        assert len(small._shards[C].cache) == 3
        got = small.retrieve(C, [pid(i) for i in range(20, 0, -1)])
        assert [h.id for h in got] == [pid(i) for i in range(20, 0, -1)]
    small.close()
