"""int8 scalar quantization vs full float vectors on Qdrant Edge, through ``EdgeStore``.

For each size N: insert N unit vectors (384-d), ``optimize()`` (HNSW), then time
single-path dense queries and measure recall@10 against exact numpy search. Memory is
the process's RSS growth after loading and searching the collection in a fresh child
process (so the two collections cannot share pages), plus the collection's size on disk.

The vectors are ``structured`` by default: a 64-d Gaussian latent projected to 384-d plus
isotropic noise, which gives text-embedding-like statistics (unrelated pairs near cosine
0, nearest neighbours clearly closer). ``--data random`` draws i.i.d. Gaussian vectors
instead: in 384-d their nearest neighbours are barely nearer than any other point, the
worst case for any graph index (recall@10 0.13 at 100k, hnsw_ef 128), which says little
about real collections and builds far slower.

    .venv/bin/python benchmarks/bench_quantization.py --sizes 100000 1000000 --queries 200

Prints one table row per (N, quantization).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.store.edge import EdgeStore  # noqa: E402
from rag.types import CollectionSpec, Point, SearchRequest, VectorQuery  # noqa: E402

SPEC = CollectionSpec(dense={"text": 384}, sparse=())


LATENT = 64
NOISE = 3.0  # per-dimension noise std against a latent variance of LATENT per dimension


def unit(rng: np.random.Generator, n: int, dim: int,
         projection: np.ndarray | None) -> np.ndarray:
    """``n`` unit vectors, structured through ``projection`` (None: i.i.d. random), in
    chunks so that 1M x 384 float32 is the largest array."""
    out = np.empty((n, dim), dtype=np.float32)
    for i in range(0, n, 65536):
        k = min(65536, n - i)
        if projection is None:
            v = rng.normal(size=(k, dim)).astype(np.float32)
        else:
            v = rng.normal(size=(k, LATENT)).astype(np.float32) @ projection
            v += NOISE * rng.normal(size=(k, dim)).astype(np.float32)
        out[i:i + k] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def exact_top10(data: np.ndarray, queries: np.ndarray) -> list[list[int]]:
    scores = np.concatenate([queries @ data[i:i + 131072].T
                             for i in range(0, len(data), 131072)], axis=1)
    return [list(np.argsort(-row)[:10]) for row in scores]


def build(root: Path, quant: str, data: np.ndarray) -> tuple[float, float]:
    store = EdgeStore(root, quantization=quant)
    store.ensure("b", SPEC)
    started = time.perf_counter()
    ids = [str(uuid.UUID(int=i)) for i in range(len(data))]
    for i in range(0, len(data), 4096):
        store.upsert("b", [Point(ids[j], {"text": data[j]}, {}) for j in
                           range(i, min(i + 4096, len(data)))])
    insert = time.perf_counter() - started
    started = time.perf_counter()
    store.optimize("b")
    optimize = time.perf_counter() - started
    store.close()
    return insert, optimize


def measure(root: str, quant: str, efs: list[int], queries: np.ndarray,
            truth: list[list[int]],
            out: multiprocessing.queues.Queue) -> None:  # type: ignore[name-defined]
    """Per ``hnsw_ef``: latency and recall@10; RSS growth after all of them."""
    before = rss_mb()
    results = []
    for ef in efs:
        store = EdgeStore(Path(root), quantization=quant, hnsw_ef=ef)
        times, recalls = [], []
        for q, expected in zip(queries, truth, strict=True):
            started = time.perf_counter()
            hits = store.query("b", SearchRequest(paths=[VectorQuery("text", q, 100)],
                                                  limit=10))
            times.append(time.perf_counter() - started)
            got = {uuid.UUID(h.id).int for h in hits}
            recalls.append(len(got & set(expected)) / 10)
        results.append({"ef": ef, "p50_ms": float(np.percentile(times, 50) * 1000),
                        "p95_ms": float(np.percentile(times, 95) * 1000),
                        "recall": float(np.mean(recalls))})
        if ef != efs[-1]:
            store.close()
    after = rss_mb()
    store.close()
    out.put([{**r, "rss_mb": after - before} for r in results])


def rss_mb() -> float:
    """Resident memory now (VmRSS), mapped vector files included."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def du(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[20000])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--data", choices=["structured", "random"], default="structured")
    ap.add_argument("--quant", nargs="+", default=["none", "int8"])
    ap.add_argument("--ef", type=int, nargs="+", default=[128],
                    help="hnsw_ef values to search with (store.hnsw_ef; 128 is the default)")
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    projection = (rng.normal(size=(LATENT, 384)).astype(np.float32)
                  if args.data == "structured" else None)
    rows = []
    ctx = multiprocessing.get_context("spawn")
    print(f"{'N':>9} {'quant':>5} {'ef':>4} {'insert s':>9} {'optimize s':>10} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'recall@10':>9} {'RSS MB':>7} {'disk MB':>8}", flush=True)
    for n in args.sizes:
        data = unit(rng, n, 384, projection)
        queries = unit(rng, args.queries, 384, projection)
        truth = exact_top10(data, queries)
        nearest = float(np.mean([data[t[0]] @ q for t, q in zip(truth, queries, strict=True)]))
        print(f"# N={n} {args.data}: mean cosine of a query's nearest point {nearest:.3f}",
              flush=True)
        for quant in args.quant:
            with tempfile.TemporaryDirectory() as tmp:
                insert, optimize = build(Path(tmp), quant, data)
                out = ctx.Queue()
                proc = ctx.Process(target=measure,
                                   args=(tmp, quant, args.ef, queries, truth, out))
                proc.start()
                measured = out.get()
                proc.join()
                disk = du(Path(tmp))
                for m in measured:
                    row = {"n": n, "data": args.data, "quant": quant, "insert_s": insert,
                           "optimize_s": optimize, **m, "disk_mb": disk}
                    rows.append(row)
                    print(f"{n:>9} {quant:>5} {m['ef']:>4} {insert:>9.1f} {optimize:>10.1f} "
                          f"{m['p50_ms']:>7.2f} {m['p95_ms']:>7.2f} {m['recall']:>9.3f} "
                          f"{m['rss_mb']:>7.0f} {disk:>8.0f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    print(f"cpus={os.cpu_count()}")


if __name__ == "__main__":
    main()
