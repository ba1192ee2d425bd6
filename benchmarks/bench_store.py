"""Store latency benchmark: Qdrant Edge vs qdrant-client local mode, through our own
``VectorStore`` code (validation, conversion, locking included), not the raw engines.

For each backend and size N: insert N random unit vectors (``text``, --dim) with a random
``bm25`` sparse vector (~20 non-zeros from a 30k vocabulary) in batches, ``optimize()``,
then time single-path dense queries and fused text+bm25 (RRF) queries. Dense recall@10
against exact numpy search is printed too, so a fast number cannot hide a bad index.

    .venv/bin/python benchmarks/bench_store.py --sizes 10000 100000 --queries 200 --dim 384

qdrant-client local mode is numpy brute force (and pure-Python sparse scoring), so at
100k its query phases stop after ``--budget`` seconds each; the table says how many
queries each percentile is based on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.store.base import VectorStore  # noqa: E402
from rag.store.edge import EdgeStore  # noqa: E402
from rag.store.qdrant import QdrantStore  # noqa: E402
from rag.types import (  # noqa: E402
    BM25,
    TEXT,
    CollectionSpec,
    Point,
    SearchRequest,
    SparseVector,
    VectorQuery,
    path_prefixes,  # noqa: E402
)

VOCAB = 30_000
NNZ = 20
TOP_K = 10
PREFETCH = 50
COLLECTION = "bench"


@dataclass
class Result:
    backend: str
    n: int
    insert_s: float
    optimize_s: float
    dense: list[float]
    fused: list[float]
    recall: float
    top1: float

    def row(self) -> str:
        def pct(xs: list[float], q: float) -> str:
            return f"{np.percentile(xs, q) * 1000:8.2f}" if xs else "     n/a"

        return (
            f"{self.backend:<14} {self.n:>8} {self.insert_s:>9.1f} {self.optimize_s:>10.1f} "
            f"{pct(self.dense, 50)} {pct(self.dense, 95)} {len(self.dense):>4} "
            f"{pct(self.fused, 50)} {pct(self.fused, 95)} {len(self.fused):>4} "
            f"{self.recall:>9.3f} {self.top1:>6.3f}"
        )


HEADER = (
    f"{'backend':<14} {'N':>8} {'insert s':>9} {'optimize s':>10} "
    f"{'dense p50':>8} {'dense p95':>8} {'n':>4} "
    f"{'fused p50':>8} {'fused p95':>8} {'n':>4} {'recall@10':>9} {'top-1':>6}"
)


def make_data(n: int, dim: int, rng: np.random.Generator) -> tuple[np.ndarray, list[SparseVector]]:
    dense = rng.standard_normal((n, dim), dtype=np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    # Random term ids per document: sample with replacement, then de-duplicate (~20 nnz).
    terms = rng.integers(0, VOCAB, size=(n, NNZ))
    weights = rng.uniform(0.2, 2.0, size=(n, NNZ)).astype(np.float32)
    sparse = []
    for row_terms, row_weights in zip(terms, weights, strict=True):
        idx, first = np.unique(row_terms, return_index=True)
        sparse.append(SparseVector(tuple(idx.tolist()), tuple(row_weights[first].tolist())))
    return dense, sparse


def make_queries(
    dense: np.ndarray, sparse: list[SparseVector], count: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[SparseVector]]:
    """Queries near stored points (noise added), so neighbourhoods are meaningful."""
    picks = rng.integers(0, len(dense), size=count)
    dim = dense.shape[1]
    noise = rng.standard_normal((count, dim), dtype=np.float32) / np.sqrt(dim)
    q = dense[picks] + 0.5 * noise
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    sq = []
    for i in picks:
        doc = sparse[i]
        take = rng.choice(len(doc.indices), size=min(5, len(doc.indices)), replace=False)
        sq.append(SparseVector(tuple(doc.indices[j] for j in sorted(take)), (1.0,) * len(take)))
    return q, sq


def insert(store: VectorStore, dense: np.ndarray, sparse: list[SparseVector], batch: int) -> float:
    start = time.perf_counter()
    for lo in range(0, len(dense), batch):
        points = []
        for i in range(lo, min(lo + batch, len(dense))):
            source = f"corpus/{i // 1000}/doc{i}.txt"
            points.append(
                Point(
                    str(uuid.UUID(int=i + 1)),
                    {TEXT: dense[i], BM25: sparse[i]},
                    {
                        "doc_id": f"d{i}",
                        "source": source,
                        "path_prefixes": path_prefixes(source),
                        "modality": "text",
                        "page": 1,
                        "chunk": 0,
                        "text": f"chunk {i}",
                    },
                )
            )
        store.upsert(COLLECTION, points)
    return time.perf_counter() - start


def timed(
    run: Callable[[int], object], count: int, budget_s: float, warmup: int = 5
) -> list[float]:
    for i in range(min(warmup, count)):
        run(i)
    out: list[float] = []
    deadline = time.perf_counter() + budget_s
    for i in range(count):
        t0 = time.perf_counter()
        run(i)
        out.append(time.perf_counter() - t0)
        if time.perf_counter() > deadline:
            break
    return out


def bench(
    name: str,
    store: VectorStore,
    dense: np.ndarray,
    sparse: list[SparseVector],
    queries: int,
    batch: int,
    budget_s: float,
    rng: np.random.Generator,
) -> Result:
    store.ensure(COLLECTION, CollectionSpec(dense={TEXT: dense.shape[1]}, sparse=(BM25,)))
    insert_s = insert(store, dense, sparse, batch)
    assert store.count(COLLECTION) == len(dense)
    t0 = time.perf_counter()
    store.optimize(COLLECTION)
    optimize_s = time.perf_counter() - t0

    qd, qs = make_queries(dense, sparse, queries, rng)
    qd_lists = [v.tolist() for v in qd]
    found: dict[int, list[str]] = {}

    def dense_query(i: int) -> object:
        hits = store.query(
            COLLECTION,
            SearchRequest(paths=[VectorQuery(TEXT, qd_lists[i], TOP_K)], limit=TOP_K),
        )
        found[i] = [h.id for h in hits]
        return hits

    def fused_query(i: int) -> object:
        return store.query(
            COLLECTION,
            SearchRequest(
                paths=[
                    VectorQuery(TEXT, qd_lists[i], PREFETCH),
                    VectorQuery(BM25, qs[i], PREFETCH),
                ],
                limit=TOP_K,
                fusion="rrf",
            ),
        )

    dense_lat = timed(dense_query, queries, budget_s)
    fused_lat = timed(fused_query, queries, budget_s)

    # Dense path against exact search over the same vectors: recall@10, and how often
    # the exact nearest neighbour comes first. Random unit vectors have no structure
    # beyond the planted neighbour (ranks 2..10 are near-ties around cosine 0), which
    # makes recall@10 a harsh test; top-1 is the number a real query resembles.
    measured = sorted(found)
    exact = np.argsort(-(qd[measured] @ dense.T), axis=1)[:, :TOP_K]
    hits = firsts = 0
    for row, i in zip(exact, measured, strict=True):
        truth = [str(uuid.UUID(int=int(j) + 1)) for j in row]
        hits += len(set(truth) & set(found[i]))
        firsts += bool(found[i]) and found[i][0] == truth[0]
    recall = hits / (TOP_K * len(measured)) if measured else float("nan")
    top1 = firsts / len(measured) if measured else float("nan")
    return Result(name, len(dense), insert_s, optimize_s, dense_lat, fused_lat, recall, top1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--batch", type=int, default=1000, help="points per upsert call")
    parser.add_argument(
        "--backends", nargs="+", default=["edge", "qdrant-local"], choices=["edge", "qdrant-local"]
    )
    parser.add_argument(
        "--budget", type=float, default=60.0, help="max seconds per query phase (per backend, N)"
    )
    parser.add_argument("--root", type=Path, default=None, help="folder for the edge shards")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print(
        f"dim={args.dim} queries={args.queries} batch={args.batch} top_k={TOP_K} "
        f"prefetch={PREFETCH} sparse nnz~{NNZ}/{VOCAB}",
        flush=True,
    )
    results: list[Result] = []
    with tempfile.TemporaryDirectory(dir=args.root) as tmp:
        for n in args.sizes:
            rng = np.random.default_rng(args.seed)
            dense, sparse = make_data(n, args.dim, rng)
            for backend in args.backends:
                store: VectorStore
                if backend == "edge":
                    store = EdgeStore(Path(tmp) / f"edge-{n}")
                else:
                    store = QdrantStore(url=":memory:")
                try:
                    result = bench(
                        backend, store, dense, sparse, args.queries, args.batch, args.budget,
                        np.random.default_rng(args.seed + 1),
                    )
                finally:
                    store.close()
                results.append(result)
                print(result.row(), flush=True)
    print()
    print("latencies in ms; n = queries measured (phases stop after --budget seconds)")
    print(HEADER)
    for r in results:
        print(r.row())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
