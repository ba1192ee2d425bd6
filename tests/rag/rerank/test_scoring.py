from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from rag.rerank.exact import ExactReranker
from rag.rerank.scoring import dbsf_array, document_boost, mmr_order, sparse_dots
from rag.settings import RetrievalSettings
from rag.types import Hit, SparseVector

scores = st.lists(st.one_of(st.none(), st.floats(-1e3, 1e3)), min_size=1, max_size=30)


@given(scores)
def test_dbsf_is_bounded_and_order_preserving(raw: list[float | None]) -> None:
    out = dbsf_array(np.array([np.nan if r is None else r for r in raw], dtype=np.float64))
    assert len(out) == len(raw)
    assert all(0.0 <= x <= 1.0 for x in out)
    present = [(r, o) for r, o in zip(raw, out, strict=True) if r is not None]
    for (r1, o1) in present:
        for (r2, o2) in present:
            if r1 < r2:
                assert o1 <= o2


@given(st.integers(1, 12), st.integers(1, 12), st.floats(0.05, 1.0))
def test_mmr_picks_distinct_indices_within_limit(n: int, limit: int, lam: float) -> None:
    rng = np.random.default_rng(n)
    rel = rng.random(n).tolist()
    sim = rng.random((n, n))
    sim = (sim + sim.T) / 2
    picked = mmr_order(rel, sim, limit, lam, duplicate_threshold=2.0)
    order = [i for i, _ in picked]
    gains = [g for _, g in picked]
    assert len(order) == min(n, limit) and len(set(order)) == len(order)
    assert order[0] == int(np.argmax(rel))  # the most relevant always comes first
    assert gains == sorted(gains, reverse=True)  # scores agree with the order


def test_mmr_drops_near_duplicates() -> None:
    rel = [1.0, 0.99, 0.5]
    sim = np.array([[1.0, 0.99, 0.1], [0.99, 1.0, 0.1], [0.1, 0.1, 1.0]])
    assert [i for i, _ in mmr_order(rel, sim, 3, 0.8, duplicate_threshold=0.97)] == [0, 2]


def test_sparse_dots_known_values() -> None:
    assert sparse_dots(SparseVector((1, 5), (1.0, 1.0)),
                       [SparseVector((5, 9), (2.0, 3.0))]).tolist() == [2.0]
    assert sparse_dots(SparseVector((1,), (1.0,)), [SparseVector((), ())]).tolist() == [0.0]


def dot(a: SparseVector, b: SparseVector) -> float:
    """The reference: one dictionary lookup per entry of ``a``."""
    weights = dict(zip(b.indices, b.values, strict=True))
    return sum(v * weights.get(i, 0.0) for i, v in zip(a.indices, a.values, strict=True))


sparse = st.dictionaries(st.integers(0, 40), st.floats(-10, 10), max_size=12).map(
    lambda d: SparseVector(tuple(d), tuple(d.values())))


@given(sparse, st.lists(sparse, max_size=8))
def test_sparse_dots_are_the_pairwise_dot_products(q: SparseVector,
                                                   vs: list[SparseVector]) -> None:
    """The reranker's one-pass BM25 scores equal one dot product per candidate."""
    got = sparse_dots(q, vs)
    assert got.shape == (len(vs),)
    for g, v in zip(got, vs, strict=True):
        assert abs(g - dot(q, v)) <= 1e-9 * max(1.0, abs(g))


def _hit(i: int, text: str, vec: list[float]) -> Hit:
    return Hit(id=str(i), score=0.0, source=f"doc{i}.md", page=1, modality="text", text=text,
               vectors={"text": vec})


def test_exact_reranker_rescores_on_vectors_and_removes_duplicates() -> None:
    hits = [
        _hit(0, "far away", [0.0, 1.0]),
        _hit(1, "the answer", [1.0, 0.0]),
        _hit(2, "the answer", [1.0, 0.0]),  # same text exported twice
        _hit(3, "close", [0.8, 0.6]),
    ]
    out = ExactReranker(RetrievalSettings()).rerank([("text", [1.0, 0.0])], hits, 10)
    assert [h.id for h in out] == ["1", "3", "0"]
    assert out[0].score >= out[1].score >= out[2].score


doc_scores = st.lists(st.tuples(st.floats(0, 1), st.sampled_from("abcd")), min_size=1,
                      max_size=25)


@given(doc_scores, st.floats(0, 2), st.integers(1, 4))
def test_document_boost_keeps_order_inside_a_document(
    rows: list[tuple[float, str]], weight: float, top: int
) -> None:
    rel = [r for r, _ in rows]
    groups = [g for _, g in rows]
    out = document_boost(rel, groups, weight, top)
    assert len(out) == len(rel)
    assert all(o >= r - 1e-12 for o, r in zip(out, rel, strict=True))  # never lowers
    for i in range(len(rel)):
        for j in range(len(rel)):
            if groups[i] == groups[j] and rel[i] > rel[j]:
                assert out[i] >= out[j] - 1e-9
    assert document_boost(rel, groups, 0.0, top) == rel


def test_document_boost_prefers_the_document_with_more_evidence() -> None:
    # one strong chunk alone vs a slightly weaker chunk with two supporting chunks
    rel = [0.80, 0.75, 0.6, 0.6]
    out = document_boost(rel, ["lone", "rich", "rich", "rich"], weight=0.3, top=2)
    assert out[1] > out[0]
    assert out[0] == 0.80  # no other evidence, no boost
