"""Ingest throughput and end-to-end search latency, printed as a table.

    .venv/bin/python benchmarks/bench_pipeline.py [--text-files 200] [--searches 200]

1. text ingest, OCR excluded: generated Markdown files (about 4 KB each) through the
   offline profile (MiniLM + BM25, Qdrant Edge): files/s and chunks/s;
2. ingest with OCR: the example corpus (pictures, scanned and text PDFs, text), copied
   ``--copies`` times with distinct bytes, through mmrag with its worker pool
   (``ingest.workers: -1``), mmrag in one process (``workers: 0``) and a naive
   single-process script (the same loaders, OCR and MiniLM, file by file) in the same run;
3. end-to-end search latency (encode + fused query + exact rerank) on the example corpus,
   text queries from examples/queries.jsonl, p50/p95;
4. ``--long-pdf N``: one N-page digital PDF (every page rendered for its stored page image,
   and for CLIP's page point with ``--clip``) through the worker pool: wall time and the
   peak resident memory of the main process and of a worker, which must not grow with N.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
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


def copy_corpus(src: Path, dst: Path, copies: int) -> None:
    """``copies`` copies of every file, each with distinct bytes (a trailing byte that
    every format ignores), so none is skipped as a duplicate."""
    dst.mkdir()
    for k in range(copies):
        for f in sorted(src.rglob("*")):
            if f.is_file():
                data = f.read_bytes() + (b"\n" * (k + 1))
                (dst / f"{k}_{f.name}").write_bytes(data)


def naive_ingest(folder: Path) -> tuple[float, int]:
    """What a straightforward script does: one file at a time, RapidOCR's models as they
    ship (onnxruntime, no fused layers) with its default threads, MiniLM on torch through
    sentence-transformers and BM25 per file, vectors kept in lists. The loaders and the
    OCR tuning (stretch, no direction classifier) are mmrag's, so both read the same
    text."""
    from ingest.chunking import chunk_document
    from ingest.loaders import load_document
    from rag.encoders import build_encoders
    from rag.ocr import build_ocr

    settings = load_settings("offline", overrides={
        "data_dir": folder.parent / "naive", "text": {"runtime": "torch"},
        "ocr": {"runtime": "onnxruntime", "fuse_layers": False}})
    encoders = build_encoders(settings)
    encoders.load()
    ocr = build_ocr(settings.ocr)
    assert ocr is not None and encoders.text is not None and encoders.sparse is not None
    ocr.read(__import__("PIL.Image").Image.new("RGB", (64, 64), "white"))  # load models
    started = time.perf_counter()
    dense, sparse, n = [], [], 0
    for f in sorted(folder.iterdir()):
        try:
            doc = load_document(f.name, f.read_bytes(), ingest=settings.ingest, ocr=ocr,
                                render_pages=False)
        except Exception:
            continue
        chunks = chunk_document(doc, doc_id="0" * 64, source=f.name, chunking=settings.chunking,
                                visual_points=False, metadata={}, tenant=None)
        texts = [c.text for c in chunks if c.text.strip()]
        if texts:
            dense.append(encoders.text.encode(texts))
            sparse.extend(encoders.sparse.encode_documents(texts))
            n += len(texts)
    return time.perf_counter() - started, n


class ChildPeak(threading.Thread):
    """The largest peak resident set (VmHWM) of this process's children, polled while
    they live (``getrusage(RUSAGE_CHILDREN)`` would count the parent's pages that a
    spawned worker held between fork and exec); ``own`` is this process's largest
    resident set (VmRSS) seen meanwhile."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak = 0.0
        self.own = 0.0

    def run(self) -> None:
        me = str(os.getpid())
        while not self.stop.is_set():
            self.own = max(self.own, rss_mb())
            for status in Path("/proc").glob("[0-9]*/status"):
                try:
                    fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
                except (OSError, ValueError):
                    continue
                if fields.get("PPid", "").strip() == me and "VmHWM" in fields:
                    self.peak = max(self.peak, int(fields["VmHWM"].split()[0]) / 1024)
            self.stop.wait(0.5)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--text-files", type=int, default=200)
    ap.add_argument("--searches", type=int, default=200)
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--corpus", type=Path, default=None,
                    help="ingest this folder (e.g. eval/corpus) instead of the example "
                         "corpus copies")
    ap.add_argument("--ingest-only", action="store_true",
                    help="only the OCR-on comparison with the naive script (part 2)")
    ap.add_argument("--long-pdf", type=int, default=0, metavar="PAGES",
                    help="only the memory of ingesting one PDF of this many pages (part 4)")
    ap.add_argument("--clip", action="store_true",
                    help="with --long-pdf: CLIP ViT-B-32 on (random weights, same sizes)")
    args = ap.parse_args()
    rows: list[tuple[str, str]] = []

    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        if args.long_pdf:
            rows += long_pdf(tmpd, args.long_pdf, args.clip)
        elif args.ingest_only:
            rows += ingest_vs_naive(tmpd, args.corpus, args.copies)
        else:
            rows += text_ingest(tmpd, args.text_files)
            rows += ingest_vs_naive(tmpd, args.corpus, args.copies)
            rows += search_latency(tmpd, args.searches)

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  value")
    print("-" * (width + 40))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def text_ingest(tmpd: Path, files: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    docs = tmpd / "text"
    docs.mkdir()
    make_text_corpus(docs, files)
    s = load_settings("offline", overrides={"data_dir": tmpd / "d1", "ocr": {"enabled": False}})
    pipe = Pipeline(s)
    pipe.load()
    rep = pipe.ingest("bench", [str(docs)])
    chunks = sum(f.chunks for f in rep.files)
    rows.append(("text ingest, no OCR (files)", f"{len(rep.files) / rep.seconds:.1f} files/s"))
    rows.append(("text ingest, no OCR (chunks)",
                 f"{chunks / rep.seconds:.1f} chunks/s ({chunks} chunks, {rep.seconds:.1f}s)"))
    pipe.close()
    return rows


def ingest_vs_naive(tmpd: Path, corpus: Path | None, copies: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if corpus is None:
        mixed = tmpd / "mixed"
        copy_corpus(ROOT / "examples" / "corpus", mixed, copies)
    else:
        mixed = corpus.resolve()
    files = sum(1 for f in mixed.iterdir() if f.is_file())
    name = str(mixed) if corpus else f"examples x {copies}"
    rows.append(("corpus", f"{name}, {files} files"))
    naive_s, naive_chunks = naive_ingest(mixed)
    rows.append(("naive single-process script, OCR on",
                 f"{naive_s:.1f}s ({naive_chunks} chunks)"))
    workers_peak = ChildPeak()
    for workers in (0, -1):
        s3 = load_settings("offline", overrides={"data_dir": tmpd / f"w{workers}",
                                                 "ingest": {"workers": workers}})
        with Pipeline(s3) as p3:
            p3.load()
            if workers:
                workers_peak.start()
            rep = p3.ingest("mixed", [str(mixed)])
            if workers:
                workers_peak.stop.set()
        chunks = sum(f.chunks for f in rep.files)
        rows.append((f"mmrag ingest, OCR on, workers={workers}",
                     f"{rep.seconds:.1f}s, {len(rep.files) / rep.seconds:.2f} files/s, "
                     f"{chunks / rep.seconds:.1f} chunks/s; "
                     f"{rep.seconds / naive_s:.2f}x the naive script's time"))
    workers_peak.join()
    rows.append(("peak RSS of one ingest worker (workers=-1)", f"{workers_peak.peak:.0f} MB"))
    return rows


def long_pdf(tmpd: Path, pages: int, clip: bool) -> list[tuple[str, str]]:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    folder = tmpd / "long"
    folder.mkdir()
    rng = random.Random(3)
    c = canvas.Canvas(str(folder / "long.pdf"), pagesize=A4)
    for i in range(pages):
        for line in range(40):
            words = " ".join(rng.choice(WORDS) for _ in range(12))
            c.drawString(50, 800 - 19 * line, f"{i + 1}.{line + 1} {words}")
        c.showPage()
    c.save()
    (folder / "note.md").write_text("# A second file\n\nso the worker pool starts.")
    overrides: dict[str, object] = {"data_dir": tmpd / "dl", "ingest": {"workers": -1}}
    profile = "offline"
    if clip:  # the default profile's CLIP architecture, random weights (no download)
        profile = "default"
        overrides.update(offline=True, clip={"pretrained": None})
    s = load_settings(profile, overrides=overrides)
    with Pipeline(s) as p:
        p.load()
        base = rss_mb()
        peak = ChildPeak()
        peak.start()
        rep = p.ingest("long", [str(folder)])
        peak.stop.set()
        peak.join()
    label = f"{pages}-page PDF, {'CLIP on' if clip else 'offline profile'}"
    failed = [f.error for f in rep.files if f.status == "failed"]
    return [
        (f"{label}: ingest", f"{rep.seconds:.1f}s, {rep.points_written} points"
                             + (f", FAILED {failed}" if failed else "")),
        (f"{label}: main process RSS", f"{base:.0f} MB before, peak {peak.own:.0f} MB"),
        (f"{label}: peak RSS of one worker", f"{peak.peak:.0f} MB"),
    ]


def search_latency(tmpd: Path, searches: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    s2 = load_settings("offline", overrides={"data_dir": tmpd / "d2"})
    pipe = Pipeline(s2)
    pipe.load()
    pipe.ingest("examples", [str(ROOT / "examples" / "corpus")])
    queries = [q.query for q in read_queries(ROOT / "examples" / "queries.jsonl") if q.query]
    pipe.search("examples", queries[0])  # warm-up
    lat = []
    for i in range(searches):
        t = time.perf_counter()
        pipe.search("examples", queries[i % len(queries)], limit=10)
        lat.append((time.perf_counter() - t) * 1000)
    rows.append(("e2e text search, examples (ms)",
                 f"p50 {statistics.median(lat):.1f}  p95 {pct(lat, 0.95):.1f}  "
                 f"mean {statistics.fmean(lat):.1f}"))
    pipe.close()
    return rows


if __name__ == "__main__":
    main()
