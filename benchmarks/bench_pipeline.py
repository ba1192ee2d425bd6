"""Ingest throughput and end-to-end search latency, printed as a table.

    .venv/bin/python benchmarks/bench_pipeline.py [--text-files 200] [--searches 200]

1. text ingest, OCR excluded: generated Markdown files (about 4 KB each) through the
   offline profile (MiniLM + BM25, Qdrant Edge): files/s and chunks/s;
2. ingest with OCR: the example corpus (pictures, scanned and text PDFs, text);
3. end-to-end search latency (encode + fused query + exact rerank) on the example corpus,
   text queries from examples/queries.jsonl, p50/p95.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pipeline import Pipeline  # noqa: E402
from rag.evaluate import read_queries  # noqa: E402
from rag.settings import load_settings  # noqa: E402

WORDS = (  # noqa: SIM905 (a readable word list)
    "cluster node pod container restart probe latency throughput replica shard index vector "
    "query cache eviction memory disk backup restore snapshot certificate rotation token "
    "policy network route gateway firewall packet timeout retry budget error alert metric "
    "dashboard deploy rollback migration schema column table vacuum analyze"
).split()


def make_text_corpus(folder: Path, n: int) -> None:
    rng = random.Random(7)
    for i in range(n):
        paras = []
        for _ in range(6):
            paras.append(" ".join(rng.choice(WORDS) for _ in range(110)) + ".")
        (folder / f"note_{i:04d}.md").write_text(f"# Note {i}\n\n" + "\n\n".join(paras))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--text-files", type=int, default=200)
    ap.add_argument("--searches", type=int, default=200)
    args = ap.parse_args()
    rows: list[tuple[str, str]] = []

    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        docs = tmpd / "text"
        docs.mkdir()
        make_text_corpus(docs, args.text_files)
        s = load_settings("offline", overrides={"data_dir": tmpd / "d1", "ocr": {"enabled": False}})
        pipe = Pipeline(s)
        pipe.load()
        rep = pipe.ingest("bench", [str(docs)])
        chunks = sum(f.chunks for f in rep.files)
        rows.append(("text ingest, no OCR (files)", f"{len(rep.files) / rep.seconds:.1f} files/s"))
        rows.append(("text ingest, no OCR (chunks)",
                     f"{chunks / rep.seconds:.1f} chunks/s ({chunks} chunks, {rep.seconds:.1f}s)"))
        pipe.close()

        s2 = load_settings("offline", overrides={"data_dir": tmpd / "d2"})
        pipe = Pipeline(s2)
        pipe.load()
        rep = pipe.ingest("examples", [str(ROOT / "examples" / "corpus")])
        chunks = sum(f.chunks for f in rep.files)
        rows.append(("example corpus ingest, OCR on",
                     f"{len(rep.files) / rep.seconds:.2f} files/s, {chunks / rep.seconds:.1f} "
                     f"chunks/s ({len(rep.files)} files, {rep.seconds:.1f}s)"))
        queries = [q.query for q in read_queries(ROOT / "examples" / "queries.jsonl") if q.query]
        pipe.search("examples", queries[0])  # warm-up
        lat = []
        for i in range(args.searches):
            t = time.perf_counter()
            pipe.search("examples", queries[i % len(queries)], limit=10)
            lat.append((time.perf_counter() - t) * 1000)
        rows.append(("e2e text search, examples (ms)",
                     f"p50 {statistics.median(lat):.1f}  p95 {pct(lat, 0.95):.1f}  "
                     f"mean {statistics.fmean(lat):.1f}"))
        pipe.close()

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  value")
    print("-" * (width + 40))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
