"""One contract, every store backend: Qdrant Edge, qdrant-client ``:memory:`` and
qdrant-client local mode on disk. Real engines only.

Vectors are tiny and hand-made (``text`` 4-d, ``clip`` 8-d, ``bm25`` sparse) so every
expected ranking can be worked out by hand; dense test vectors are unit length because
cosine collections store vectors normalised.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rag.errors import BadInput, ConfigError, Conflict, NotFound, UpstreamError
from rag.settings import load_settings
from rag.store import build_store
from rag.store.base import VectorStore
from rag.store.edge import EdgeStore
from rag.store.qdrant import QdrantStore
from rag.types import (
    BM25,
    CLIP,
    TEXT,
    CollectionSpec,
    Filter,
    Hit,
    OcrBox,
    Point,
    SearchRequest,
    SparseVector,
    VectorQuery,
    path_prefixes,
)

# qdrant-client checks a server's version from a background thread; for the unreachable
# server below that warning may land during any later test of this module.
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version")

ROOT = Path(__file__).resolve().parents[3]
SPEC = CollectionSpec(dense={TEXT: 4, CLIP: 8})  # sparse: ("bm25",)
C = "docs"


# -- data helpers ------------------------------------------------------------------------


def pid(n: int | str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mmrag-test/{n}"))


def unit(dim: int, *weights: tuple[int, float]) -> list[float]:
    """A unit vector of ``dim`` with the given (axis, weight) components."""
    v = [0.0] * dim
    for axis, w in weights:
        v[axis] = w
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v]


def t(*weights: tuple[int, float]) -> list[float]:
    return unit(4, *weights)


def c(*weights: tuple[int, float]) -> list[float]:
    return unit(8, *weights)


def sp(**terms: float) -> SparseVector:
    """Sparse vector from ``t<index>=weight`` keywords, indices sorted."""
    items = sorted((int(k[1:]), v) for k, v in terms.items())
    return SparseVector(tuple(i for i, _ in items), tuple(v for _, v in items))


def point(
    n: int | str,
    *,
    text: list[float] | None = None,
    clip: list[float] | None = None,
    bm25: SparseVector | None = None,
    source: str | None = None,
    modality: str = "text",
    doc_id: str | None = None,
    tenant: str | None = None,
    meta: dict[str, Any] | None = None,
    body: str | None = None,
    **extra: Any,
) -> Point:
    vectors: dict[str, Any] = {}
    if text is not None:
        vectors[TEXT] = text
    if clip is not None:
        vectors[CLIP] = clip
    if bm25 is not None:
        vectors[BM25] = bm25
    source = source or f"misc/{n}.txt"
    payload: dict[str, Any] = {
        "doc_id": doc_id or f"doc-{n}",
        "source": source,
        "path_prefixes": path_prefixes(source),
        "modality": modality,
        "page": 1,
        "chunk": 0,
        "text": body if body is not None else f"point {n}",
        "meta": meta or {},
        **extra,
    }
    if tenant is not None:
        payload["tenant"] = tenant
    return Point(pid(n), vectors, payload)


def ids(hits: list[Hit] | Iterator[Hit]) -> list[str]:
    return [h.id for h in hits]


def search(
    store: VectorStore,
    *paths: tuple[str, Any, int],
    limit: int = 10,
    fusion: str = "rrf",
    flt: Filter | None = None,
    with_vectors: bool = False,
) -> list[Hit]:
    request = SearchRequest(
        paths=[VectorQuery(using, vector, lim) for using, vector, lim in paths],
        limit=limit,
        fusion=fusion,  # type: ignore[arg-type]
        filter=flt,
        with_vectors=with_vectors,
    )
    return store.query(C, request)


# -- the three backends ------------------------------------------------------------------

BACKENDS: dict[str, Callable[[Path], VectorStore]] = {
    "edge": lambda tmp: EdgeStore(tmp / "edge"),
    # The point cache off, and one so small that every query evicts: whatever the cache
    # does, hits are the engine's (rag/store/point_cache.py).
    "edge-nocache": lambda tmp: EdgeStore(tmp / "edge", cache_points=0),
    "edge-cache2": lambda tmp: EdgeStore(tmp / "edge", cache_points=2),
    "qdrant-memory": lambda tmp: QdrantStore(url=":memory:"),
    "qdrant-path": lambda tmp: QdrantStore(path=str(tmp / "qdrant")),
}


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    s = BACKENDS[request.param](tmp_path)
    yield s
    s.close()


def fill(store: VectorStore) -> VectorStore:
    """Six points across sources, modalities, tenants and metadata, for the filters."""
    store.ensure(C, SPEC)
    store.upsert(
        C,
        [
            point(1, text=t((0, 1)), source="docs/a/x.pdf", modality="page", doc_id="d1",
                  tenant="t1", meta={"lang": "en", "year": 2024, "draft": True,
                                     "score": 0.5, "a.b": "dotted"}),
            point(2, text=t((0, 1), (1, 1)), source="docs/a/y.png", modality="image",
                  doc_id="d2", tenant="t1", meta={"lang": "de", "year": 2023, "draft": False}),
            point(3, text=t((1, 1)), source="docs/ab.pdf", doc_id="d3", tenant="t2",
                  meta={"lang": "en", "year": 2024}),
            point(4, text=t((2, 1)), source="docs/a/x.pdf", doc_id="d1", tenant="t1",
                  meta={"lang": "en", "with space": "yes"}, chunk=1),
            point(5, text=t((3, 1)), source="other/z.md", doc_id="d5"),
            point(6, text=t((2, 1), (3, 1)), source="docs/a", doc_id="d6", tenant="t2",
                  meta={"lang": ["en", "fr"]}),
        ],
    )
    return store


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def filled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VectorStore]:
    """:func:`fill` once per backend for the read-only filter tests (keeps the file fast:
    an edge write is a synced flush)."""
    s = fill(BACKENDS[request.param](tmp_path_factory.mktemp(request.param)))
    yield s
    s.close()


@pytest.fixture
def fresh_filled(store: VectorStore) -> VectorStore:
    """:func:`fill` for tests that change the points."""
    return fill(store)


# -- the contract --------------------------------------------------------------------------


class TestStoreContract:
    # collections ---------------------------------------------------------------------

    def test_ensure_is_idempotent_and_spec_reads_back(self, store: VectorStore) -> None:
        assert store.collections() == []
        store.ensure(C, SPEC)
        store.ensure(C, SPEC)
        assert store.collections() == [C]
        assert store.spec(C) == SPEC
        assert store.count(C) == 0

    def test_collections_are_sorted(self, store: VectorStore) -> None:
        for name in ("zeta", "Alpha", "mid_1.v2"):
            store.ensure(name, SPEC)
        assert store.collections() == sorted(["zeta", "Alpha", "mid_1.v2"])

    def test_exists_answers_what_collections_lists(self, store: VectorStore) -> None:
        assert not store.exists(C)
        store.ensure(C, SPEC)
        assert store.exists(C)
        for other in ("zeta", "../" + C, C + "\n", "", "x" * 200):
            assert not store.exists(other)  # odd names are simply absent, never an error
        store.drop(C)
        assert not store.exists(C) and store.collections() == []

    def test_ensure_with_other_vectors_conflicts(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)
        cases = [
            (CollectionSpec(dense={TEXT: 5, CLIP: 8}), ["'text'", "size 4", "wanted 5"]),
            (CollectionSpec(dense={TEXT: 4}), ["'clip'"]),
            (CollectionSpec(dense={TEXT: 4, CLIP: 8, "extra": 3}), ["'extra'"]),
            (CollectionSpec(dense={TEXT: 4, CLIP: 8}, sparse=()), ["'bm25'"]),
        ]
        for other, words in cases:
            with pytest.raises(Conflict) as err:
                store.ensure(C, other)
            for word in words:
                assert word in str(err.value)
        assert store.spec(C) == SPEC  # untouched

    @pytest.mark.parametrize("name", ["", "../x", "a/b", "-x", "x" * 65, "a b", ".hidden"])
    def test_bad_names_are_bad_input(self, store: VectorStore, name: str) -> None:
        calls: list[Callable[[], Any]] = [
            lambda: store.ensure(name, SPEC),
            lambda: store.count(name),
            lambda: store.spec(name),
            lambda: store.drop(name),
            lambda: store.upsert(name, []),
            lambda: store.scroll(name),
        ]
        for call in calls:
            with pytest.raises(BadInput) as err:
                call()
            assert repr(name) in str(err.value)

    def test_missing_collection_is_not_found_with_a_hint(self, store: VectorStore) -> None:
        request = SearchRequest([VectorQuery(TEXT, t((0, 1)), 5)], limit=5)
        calls: list[Callable[[], Any]] = [
            lambda: store.count("nope"),
            lambda: store.spec("nope"),
            lambda: store.drop("nope"),
            lambda: store.upsert("nope", [point(1)]),
            lambda: store.query("nope", request),
            lambda: store.scroll("nope"),  # raises on the call, not on the first next()
            lambda: store.delete("nope", Filter(doc_id="x")),
            lambda: store.optimize("nope"),
        ]
        for call in calls:
            with pytest.raises(NotFound) as err:
                call()
            assert "mmrag ingest PATH --collection nope" in str(err.value)

    def test_drop(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)
        store.ensure("keep", SPEC)
        store.upsert(C, [point(1, text=t((0, 1)))])
        store.drop(C)
        assert store.collections() == ["keep"]
        with pytest.raises(NotFound):
            store.count(C)
        with pytest.raises(NotFound):
            store.drop(C)
        other = CollectionSpec(dense={TEXT: 3})
        store.ensure(C, other)  # the name is free again, with a new spec
        assert store.spec(C) == other
        assert store.count(C) == 0

    # points ------------------------------------------------------------------------------

    def test_upsert_counts_and_same_ids_replace(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)
        store.upsert(C, [point(i, text=t((i % 4, 1))) for i in range(7)])
        assert store.count(C) == 7
        store.upsert(C, [point(i, text=t((0, 1)), modality="page") for i in range(7)])
        assert store.count(C) == 7
        assert store.count(C, Filter(modality=["page"])) == 7
        store.upsert(C, [])
        assert store.count(C) == 7

    def test_points_may_carry_any_subset_of_vectors_or_none(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)
        store.upsert(
            C,
            [
                point("all", text=t((0, 1)), clip=c((0, 1)), bm25=sp(t1=1.0)),
                point("text", text=t((0, 1))),
                point("clip", clip=c((0, 1))),
                point("bm25", bm25=sp(t1=1.0)),
                point("none", modality="image"),  # a picture with no OCR text, CLIP off
            ],
        )
        assert store.count(C) == 5
        assert store.count(C, Filter(modality=["image"])) == 1
        assert sorted(ids(store.scroll(C))) == sorted(pid(n) for n in
                                                       ("all", "text", "clip", "bm25", "none"))
        assert set(ids(search(store, (TEXT, t((0, 1)), 10)))) == {pid("all"), pid("text")}
        assert set(ids(search(store, (CLIP, c((0, 1)), 10)))) == {pid("all"), pid("clip")}
        assert set(ids(search(store, (BM25, sp(t1=1.0), 10)))) == {pid("all"), pid("bm25")}
        fused = search(store, (TEXT, t((0, 1)), 10), (CLIP, c((0, 1)), 10),
                       (BM25, sp(t1=1.0), 10), with_vectors=True)
        assert ids(fused)[0] == pid("all")
        vectors = {h.id: set(h.vectors) for h in fused}
        assert vectors == {
            pid("all"): {TEXT, CLIP, BM25},
            pid("text"): {TEXT},
            pid("clip"): {CLIP},
            pid("bm25"): {BM25},
        }

    def test_payload_round_trips_into_hits(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)
        box = OcrBox("Total 42", (0.1, 0.2, 0.5, 0.3), 0.93)
        p = point(1, text=t((0, 1)), source="scans/r.pdf", modality="page", doc_id="abc",
                  meta={"author": "Ann", "tags": ["x", "y"], "nested": {"k": [1, 2.5, None]}},
                  page=3, chunk=2, mime="application/pdf", boxes=[box.to_payload()],
                  media="media/abc/3.png", body="Total 42")
        store.upsert(C, [p])
        for hit in (search(store, (TEXT, t((0, 1)), 5))[0], next(store.scroll(C))):
            assert (hit.id, hit.source, hit.page, hit.chunk, hit.modality) == (
                pid(1), "scans/r.pdf", 3, 2, "page")
            assert (hit.doc_id, hit.mime, hit.media, hit.text) == (
                "abc", "application/pdf", "media/abc/3.png", "Total 42")
            assert hit.boxes == [box]
            assert (len(hit.boxes), hit.boxes[0], list(hit.boxes)) == (1, box, [box])
            assert hit.to_json()["boxes"] == [box.to_payload()]
            assert hit.metadata == {"author": "Ann", "tags": ["x", "y"],
                                    "nested": {"k": [1, 2.5, None]}}

    def test_bad_vectors_are_bad_input_and_write_nothing(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)
        cases: list[tuple[dict[str, Any], list[str]]] = [
            ({TEXT: [1.0, 0.0, 0.0]}, ["'text'", "4", "3"]),
            ({"colour": [1.0]}, ["'colour'", "bm25", "clip", "text"]),
            ({TEXT: SparseVector((1,), (1.0,))}, ["'text'", "dense"]),
            ({BM25: [1.0, 2.0]}, ["'bm25'", "sparse"]),
            ({BM25: SparseVector((1, 1), (1.0, 2.0))}, ["'bm25'", "repeats"]),
            ({BM25: SparseVector((1, 2), (1.0,))}, ["'bm25'", "values"]),
            ({TEXT: [float("nan"), 0.0, 0.0, 1.0]}, ["'text'", "NaN"]),
        ]
        good = point(1, text=t((0, 1)))
        for vectors, words in cases:
            with pytest.raises(BadInput) as err:
                store.upsert(C, [good, Point(pid(2), vectors, {"source": "x"})])
            for word in words:
                assert word in str(err.value)
        assert store.count(C) == 0  # the whole batch is checked before anything is written

    def test_bad_point_id_is_bad_input(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)
        with pytest.raises(BadInput, match="not a UUID"):
            store.upsert(C, [Point("page-1", {}, {})])

    # queries -------------------------------------------------------------------------

    def test_single_path_returns_nearest_first_with_raw_scores(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)
        store.upsert(C, [
            point("exact", text=t((0, 1))),
            point("near", text=t((0, 3), (1, 1))),
            point("far", text=t((0, 1), (1, 3))),
            point("orthogonal", text=t((2, 1))),
        ])
        hits = search(store, (TEXT, t((0, 1)), 10), limit=3)
        assert ids(hits) == [pid("exact"), pid("near"), pid("far")]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert hits[1].score == pytest.approx(3 / math.sqrt(10), abs=1e-5)
        assert hits[2].score == pytest.approx(1 / math.sqrt(10), abs=1e-5)

    @pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
    def test_fusion_puts_the_point_that_wins_two_paths_first(
        self, store: VectorStore, fusion: str
    ) -> None:
        # P is best on text and bm25, Q best on clip only, R second everywhere, S nowhere.
        store.ensure(C, SPEC)
        store.upsert(C, [
            point("P", text=t((0, 1)), clip=c((2, 1)), bm25=sp(t1=1.0)),
            point("Q", text=t((2, 1)), clip=c((0, 1)), bm25=sp(t3=1.0)),
            point("R", text=t((0, 1), (1, 2)), clip=c((0, 1), (1, 2)), bm25=sp(t1=0.5, t3=1.0)),
            point("S", text=t((3, 1)), clip=c((3, 1)), bm25=sp(t4=1.0)),
        ])
        hits = search(store, (TEXT, t((0, 1)), 10), (CLIP, c((0, 1)), 10),
                      (BM25, sp(t1=1.0), 10), fusion=fusion)
        assert ids(hits)[0] == pid("P")
        assert set(ids(hits)) == {pid(n) for n in "PQRS"}  # the union of the paths
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        if fusion == "rrf":  # 1/(rank + 2) summed over paths; P is rank 0 on two of them
            assert hits[0].score >= 1 / 2 + 1 / 2

    def test_prefetch_limits_are_applied_per_path(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)
        store.upsert(C, [
            point("a", text=t((0, 1)), clip=c((5, 1))),
            point("b", text=t((0, 1), (1, 1)), clip=c((0, 1))),
            point("c", text=t((1, 1)), clip=c((0, 1), (1, 1))),
        ])
        hits = search(store, (TEXT, t((0, 1)), 1), (CLIP, c((0, 1)), 1), limit=10)
        assert set(ids(hits)) == {pid("a"), pid("b")}

    def test_sparse_search_weighs_rare_terms_higher_idf(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)
        common, rare = 1, 2
        store.upsert(C, [point("common", bm25=SparseVector((common,), (1.0,))),
                         point("rare", bm25=SparseVector((rare,), (1.0,)))]
                     + [point(f"filler{i}", bm25=SparseVector((common, 10 + i), (1.0, 1.0)))
                        for i in range(8)])
        hits = search(store, (BM25, SparseVector((common, rare), (1.0, 1.0)), 10))
        assert ids(hits)[0] == pid("rare")
        assert hits[0].score > hits[1].score

    def test_query_naming_a_missing_vector_is_bad_input(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)
        with pytest.raises(BadInput, match="'colour'"):
            search(store, (TEXT, t((0, 1)), 5), ("colour", [1.0], 5))
        with pytest.raises(BadInput, match="'text'"):
            search(store, (TEXT, [1.0, 0.0], 5))
        with pytest.raises(BadInput):
            store.query(C, SearchRequest(paths=[], limit=5))
        with pytest.raises(BadInput):
            search(store, (TEXT, t((0, 1)), 5), limit=0)

    def test_with_vectors_round_trips(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)
        text, clip, bm25 = t((0, 1), (1, 2)), c((3, 1), (7, 2)), sp(t5=0.25, t70000=2.0)
        store.upsert(C, [point(1, text=text, clip=clip, bm25=bm25)])
        for hits in (search(store, (TEXT, text, 5), with_vectors=True),
                     search(store, (TEXT, text, 5), (BM25, bm25, 5), with_vectors=True)):
            vectors = hits[0].vectors
            assert set(vectors) == {TEXT, CLIP, BM25}
            assert vectors[TEXT] == pytest.approx(text, abs=1e-6)
            assert vectors[CLIP] == pytest.approx(clip, abs=1e-6)
            got = vectors[BM25]
            assert isinstance(got, SparseVector)
            assert got.indices == bm25.indices
            assert got.values == pytest.approx(bm25.values)
        assert search(store, (TEXT, text, 5))[0].vectors == {}

    # filters -------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("flt", "expected"),
        [
            (Filter(modality=["image"]), {2}),
            (Filter(modality=["image", "page"]), {1, 2}),
            (Filter(source="docs/a/x.pdf"), {1, 4}),
            (Filter(source_prefix="docs/a"), {1, 2, 4, 6}),  # not docs/ab.pdf
            (Filter(source_prefix="docs/a/"), {1, 2, 4, 6}),
            (Filter(source_prefix="docs"), {1, 2, 3, 4, 6}),
            (Filter(source_prefix="docs/a/x.pdf"), {1, 4}),
            (Filter(source_prefix="doc"), set()),
            (Filter(doc_id="d1"), {1, 4}),
            (Filter(exclude_doc_id="d1"), {2, 3, 5, 6}),
            (Filter(tenant="t1"), {1, 2, 4}),
            (Filter(metadata={"lang": "en"}), {1, 3, 4, 6}),  # 6 holds a list with "en"
            (Filter(metadata={"year": 2024}), {1, 3}),
            (Filter(metadata={"draft": True}), {1}),
            (Filter(metadata={"draft": False}), {2}),
            (Filter(metadata={"score": 0.5}), {1}),
            (Filter(metadata={"a.b": "dotted"}), {1}),
            (Filter(metadata={"with space": "yes"}), {4}),
            (Filter(metadata={"lang": ["de", "fr"]}), {2, 6}),
            (Filter(metadata={"year": 2024, "lang": "en"}, source_prefix="docs/a"), {1}),
            (Filter(tenant="t1", modality=["text"], exclude_doc_id="d2"), {4}),
            (Filter(tenant="t1", exclude_doc_id="d1"), {2}),
        ],
    )
    def test_filters_agree_across_count_scroll_and_query(
        self, filled: VectorStore, flt: Filter, expected: set[int]
    ) -> None:
        want = {pid(n) for n in expected}
        assert filled.count(C, flt) == len(want)
        assert set(ids(filled.scroll(C, flt, batch=2))) == want
        assert set(ids(search(filled, (TEXT, t((0, 1)), 10), flt=flt))) == want
        fused = search(filled, (TEXT, t((0, 1)), 10), (BM25, sp(t1=1.0), 10), flt=flt)
        assert set(ids(fused)) == want

    @pytest.mark.parametrize(
        "flt",
        [
            Filter(modality=["video"]),
            Filter(source_prefix="/"),
            Filter(metadata={"x": None}),
            Filter(metadata={"x": {"a": 1}}),
            Filter(metadata={"x": ["a", 1]}),
            Filter(metadata={'say "hi"': 1}),
        ],
    )
    def test_unusable_filters_are_bad_input(self, filled: VectorStore, flt: Filter) -> None:
        with pytest.raises(BadInput):
            filled.count(C, flt)
        with pytest.raises(BadInput):
            search(filled, (TEXT, t((0, 1)), 10), flt=flt)

    def test_query_batch_answers_each_request_as_query_does(self, filled: VectorStore) -> None:
        """What concurrent searches get when the pipeline batches them: per request,
        the same hits, scores and vectors as its own query, in request order."""
        requests = [
            SearchRequest(paths=[VectorQuery(TEXT, t((0, 1)), 10)], limit=3),
            SearchRequest(paths=[VectorQuery(TEXT, t((2, 1)), 10),
                                 VectorQuery(BM25, sp(t1=1.0), 10)], limit=10,
                          filter=Filter(source_prefix="docs/a")),
            SearchRequest(paths=[VectorQuery(TEXT, t((3, 1)), 10)], limit=2,
                          fusion="dbsf", with_vectors=True),
            SearchRequest(paths=[VectorQuery(TEXT, t((0, 1)), 10)], limit=3),
        ]
        batched = filled.query_batch(C, requests)
        alone = [filled.query(C, r) for r in requests]
        assert [[(h.id, round(h.score, 5)) for h in hits] for hits in batched] == [
            [(h.id, round(h.score, 5)) for h in hits] for hits in alone]
        assert batched[2][0].vectors.keys() == alone[2][0].vectors.keys() != set()
        with pytest.raises(BadInput, match="'colour'"):
            filled.query_batch(C, [requests[0], SearchRequest(
                paths=[VectorQuery("colour", [1.0], 5)], limit=5)])

    def test_filter_applies_inside_each_prefetch(self, store: VectorStore) -> None:
        # The text point is nearest on both paths; with prefetch limit 1 a filter applied
        # only after fusion would leave nothing. Applied inside, the image point is found.
        store.ensure(C, SPEC)
        store.upsert(C, [
            point("txt", text=t((0, 1)), clip=c((0, 1))),
            point("img", text=t((0, 1), (1, 1)), clip=c((0, 1), (1, 1)), modality="image"),
        ])
        hits = search(store, (TEXT, t((0, 1)), 1), (CLIP, c((0, 1)), 1),
                      flt=Filter(modality=["image"]))
        assert ids(hits) == [pid("img")]
        hits = search(store, (TEXT, t((0, 1)), 1), flt=Filter(modality=["image"]))
        assert ids(hits) == [pid("img")]

    # delete / scroll -----------------------------------------------------------------------

    def test_delete_by_filter_returns_the_count_and_keeps_the_rest(
        self, fresh_filled: VectorStore
    ) -> None:
        filled = fresh_filled
        assert filled.delete(C, Filter(doc_id="d1")) == 2
        assert filled.count(C) == 4
        assert filled.count(C, Filter(doc_id="d1")) == 0
        assert filled.delete(C, Filter(doc_id="d1")) == 0
        assert filled.delete(C, Filter(source_prefix="docs/a")) == 2  # 2 and 6
        assert sorted(ids(filled.scroll(C))) == sorted([pid(3), pid(5)])

    def test_empty_filter_delete_is_refused(self, fresh_filled: VectorStore) -> None:
        filled = fresh_filled
        for flt in (Filter(), Filter(modality=[], metadata={})):
            with pytest.raises(BadInput, match="empty filter"):
                filled.delete(C, flt)
        assert filled.count(C) == 6

    def test_scroll_yields_everything_lazily_in_id_order(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)
        store.upsert(C, [point(i, text=t((i % 4, 1))) for i in range(11)])
        pages = store.scroll(C, batch=3)
        assert iter(pages) is pages  # an iterator, not a list
        first = next(pages)
        rest = list(pages)
        got = [first.id, *ids(rest)]
        assert got == sorted(pid(i) for i in range(11))
        assert {h.score for h in [first, *rest]} == {0.0}
        assert list(store.scroll(C, Filter(doc_id="none"))) == []
        with pytest.raises(BadInput):
            store.scroll(C, batch=0)

    def test_a_query_can_leave_payload_keys_out(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)
        box = {"text": "Total 42", "box": [0.1, 0.2, 0.5, 0.3], "confidence": 0.9}
        store.upsert(C, [point(1, text=t((0, 1)), source="a.png", body="Total 42",
                               boxes=[box])])
        req = SearchRequest(paths=[VectorQuery(using=TEXT, vector=t((0, 1)), limit=5)],
                            limit=5)
        (full,) = store.query(C, req)
        assert [b.text for b in full.boxes] == ["Total 42"]
        for lean in (store.query(C, replace(req, exclude_payload=("boxes",)))[0],
                     store.query_batch(C, [replace(req, exclude_payload=("boxes",))])[0][0]):
            assert lean.id == full.id and lean.source == "a.png" and lean.text == "Total 42"
            assert list(lean.boxes) == []
        (again,) = store.retrieve(C, [full.id])
        assert [b.text for b in again.boxes] == ["Total 42"]

    def test_retrieve_looks_points_up_by_id(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)
        store.upsert(C, [point(i, text=t((i % 4, 1)), source=f"s{i}.md") for i in range(5)])
        got = store.retrieve(C, [pid(3), pid("missing"), pid(1)])
        assert sorted(ids(got)) == sorted([pid(1), pid(3)])
        assert {h.source for h in got} == {"s1.md", "s3.md"}
        assert {h.score for h in got} == {0.0} and all(not h.vectors for h in got)
        assert store.retrieve(C, []) == []
        with pytest.raises(NotFound):
            store.retrieve("nope", [pid(1)])

    def test_optimize_keeps_answers(self, fresh_filled: VectorStore) -> None:
        filled = fresh_filled
        before = ids(search(filled, (TEXT, t((0, 1)), 10)))
        filled.optimize(C)
        assert ids(search(filled, (TEXT, t((0, 1)), 10))) == before

    def test_concurrent_calls_from_threads(self, store: VectorStore) -> None:
        store.ensure(C, SPEC)

        def work(worker: int) -> int:
            for i in range(3):
                batch = [point(f"{worker}-{i}-{j}", text=t((j % 4, 1)), bm25=sp(t1=1.0))
                         for j in range(4)]
                store.upsert(C, batch)
                search(store, (TEXT, t((0, 1)), 5), (BM25, sp(t1=1.0), 5))
                store.count(C, Filter(modality=["text"]))
            return len(list(store.scroll(C, batch=7)))

        with ThreadPoolExecutor(max_workers=4) as pool:
            seen = list(pool.map(work, range(4)))
        assert store.count(C) == 48
        assert all(12 <= n <= 48 for n in seen)


# -- edge only -----------------------------------------------------------------------------


CHILD = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from rag.store.edge import EdgeStore
    from rag.types import CollectionSpec, Point
    store = EdgeStore(Path(sys.argv[1]))
    store.ensure("docs", CollectionSpec(dense={"text": 4, "clip": 8}))
    store.upsert("docs", [
        Point(sys.argv[2], {"text": [1.0, 0.0, 0.0, 0.0]}, {"source": "child.txt"}),
        Point(sys.argv[3], {}, {"source": "child.png", "modality": "image"}),
    ])
    os._exit(0)  # no close(), no interpreter shutdown: only flush() made it durable
    """
)


class TestEdgeStore:
    def test_constructor_is_cheap(self, tmp_path: Path) -> None:
        root = tmp_path / "not-yet"
        store = EdgeStore(root)
        assert store.collections() == []
        assert not root.exists()
        store.close()

    def test_a_new_store_on_the_same_root_sees_the_data(self, tmp_path: Path) -> None:
        first = EdgeStore(tmp_path)
        first.ensure(C, SPEC)
        first.upsert(C, [point(i, text=t((i % 4, 1))) for i in range(5)])
        second = EdgeStore(tmp_path)
        with pytest.raises(Conflict, match="another process"):  # one opener at a time
            second.count(C)
        first.close()
        assert second.count(C) == 5
        assert second.spec(C) == SPEC
        assert set(ids(search(second, (TEXT, t((0, 1)), 1), limit=2))) == {pid(0), pid(4)}
        assert second.collections() == [C]
        second.close()

    def test_data_survives_a_process_exit(self, tmp_path: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        a, b = pid("child-a"), pid("child-b")
        subprocess.run(
            [sys.executable, "-c", CHILD, str(tmp_path), a, b],
            check=True, env=env, cwd=ROOT, timeout=60,
        )
        with EdgeStore(tmp_path) as store:
            assert store.collections() == [C]
            assert store.count(C) == 2
            assert store.count(C, Filter(modality=["image"])) == 1
            assert ids(search(store, (TEXT, t((0, 1)), 5))) == [a]
            store.upsert(C, [point(1, text=t((1, 1)))])
        with EdgeStore(tmp_path) as store:
            assert store.count(C) == 3

    def test_no_staging_folders_are_left_or_listed(self, tmp_path: Path) -> None:
        with EdgeStore(tmp_path) as store:
            store.ensure(C, SPEC)
            store.ensure("gone", SPEC)
            store.drop("gone")
        assert sorted(p.name for p in tmp_path.iterdir()) == [C]


class TestQdrantStore:
    def test_needs_exactly_one_location(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError):
            QdrantStore()
        with pytest.raises(ConfigError):
            QdrantStore(url=":memory:", path=str(tmp_path))

    def test_unreachable_server_is_upstream_error(self) -> None:
        store = QdrantStore(url="http://127.0.0.1:9")  # nothing listens on the discard port
        with pytest.raises(UpstreamError, match="127.0.0.1:9"):
            store.collections()
        store.close()


def test_registry_builds_both_backends_cheaply(tmp_path: Path) -> None:
    edge = build_store(load_settings(overrides={"data_dir": tmp_path}))
    assert isinstance(edge, EdgeStore) and edge.collections() == []
    settings = load_settings(overrides={"data_dir": tmp_path,
                                        "store": {"backend": "qdrant", "url": ":memory:"}})
    qdrant = build_store(settings)
    assert isinstance(qdrant, QdrantStore)
    assert list(tmp_path.iterdir()) == []  # nothing created until used


def test_backends_agree_on_ids_and_scores(tmp_path: Path) -> None:
    """Congruence: the same points and queries give the same ranking and scores on
    every backend (fusion constants, IDF and cosine all match)."""
    stores = {name: make(tmp_path / name) for name, make in BACKENDS.items()}
    points = [
        point("P", text=t((0, 1)), clip=c((2, 1)), bm25=sp(t1=1.0, t7=0.5)),
        point("Q", text=t((2, 1), (0, 0.2)), clip=c((0, 1)), bm25=sp(t3=1.0)),
        point("R", text=t((0, 1), (1, 2)), clip=c((0, 1), (1, 2)), bm25=sp(t1=0.5, t3=1.0)),
        point("S", text=t((3, 1), (0, 0.1)), clip=c((3, 1), (0, 0.3)), bm25=sp(t1=0.2, t4=1.0)),
        point("T", clip=c((0, 1), (4, 1))),
    ]
    queries: list[list[tuple[str, Any, int]]] = [
        [(TEXT, t((0, 1), (1, 0.3)), 10)],
        [(BM25, sp(t1=1.0, t3=1.0), 10)],
        [(TEXT, t((0, 1)), 3), (CLIP, c((0, 1)), 3), (BM25, sp(t1=1.0), 3)],
    ]
    answers: dict[str, list[list[tuple[str, float]]]] = {}
    try:
        for name, store in stores.items():
            store.ensure(C, SPEC)
            store.upsert(C, points)
            answers[name] = [
                [(h.id, h.score) for h in search(store, *paths, fusion=fusion)]
                for paths in queries
                for fusion in ("rrf", "dbsf")
            ]
    finally:
        for store in stores.values():
            store.close()
    reference = answers.pop("edge")
    for name, got in answers.items():
        for want_hits, got_hits in zip(reference, got, strict=True):
            assert [i for i, _ in got_hits] == [i for i, _ in want_hits], name
            assert [s for _, s in got_hits] == pytest.approx([s for _, s in want_hits], abs=1e-5)
