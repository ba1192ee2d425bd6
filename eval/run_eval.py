"""Retrieval quality on the eval set: R@1, R@5 and MRR per kind, through the Pipeline.

    python eval/run_eval.py --ingest                 # build the collection (slow: OCR)
    python eval/run_eval.py                          # dev split against the stored collection
    python eval/run_eval.py --split test             # the held-out split: report only, never tune
    python eval/run_eval.py --set retrieval.fusion=dbsf --set chunking.size=500 --ingest

Search goes through ``Pipeline.search`` (what ``POST /v1/search`` calls) with the offline
profile. ``--set`` overrides any setting with a dotted key (values parsed as YAML);
settings that change what is stored (chunking, embedding text) need ``--ingest`` into a
fresh ``--data-dir``, retrieval settings re-use the stored collection. Each run's
numbers and misses go to ``eval/runs/<name>.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from PIL import Image  # noqa: E402

from pipeline import Pipeline  # noqa: E402
from rag.evaluate import EvalResult, evaluate, read_queries  # noqa: E402
from rag.ocr import OCR_TEXT_VERSION  # noqa: E402
from rag.settings import Settings, load_settings  # noqa: E402

COLLECTION = "eval"
# One cache per OCR text version: a cache of older OCR text must not feed a newer ingest.
OCR_CACHE = HERE / ".cache" / f"ocr-v{OCR_TEXT_VERSION}.pickle"


class CachedOcr:
    """Wraps the OCR engine with a disk cache keyed by the image's pixels: OCR is most of
    the ingest time on two cores, and re-ingesting for a chunking experiment must not pay
    it again. Harness only; the pipeline itself never caches OCR."""

    def __init__(self, engine: Any, path: Path = OCR_CACHE) -> None:
        self.engine = engine
        self.path = path
        self.cache: dict[str, Any] = pickle.loads(path.read_bytes()) if path.exists() else {}

    def load(self) -> None:
        if hasattr(self.engine, "load"):
            self.engine.load()

    def read(self, image: Image.Image) -> Any:
        key = hashlib.sha256(image.tobytes() + repr(image.size).encode()).hexdigest()
        if key not in self.cache:
            self.cache[key] = self.engine.read(image)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(pickle.dumps(self.cache))
            tmp.replace(self.path)
        return self.cache[key]


def cached_ocr_pipeline(settings: Settings) -> Pipeline:
    """A Pipeline whose OCR stage goes through :class:`CachedOcr`. The harness reaches
    into the pipeline's private stage here (before the runner and retriever are built),
    which no surface may do; it changes only where OCR results come from."""
    pipe = Pipeline(settings)
    if pipe._ocr is not None:
        pipe.__dict__["_ocr"] = CachedOcr(pipe._ocr)
    return pipe


def overrides(pairs: list[str]) -> dict[str, Any]:
    """``a.b=v`` pairs as a nested dict, values parsed as YAML (numbers, lists, maps)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        node = out
        *parents, leaf = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(raw)
    return out


def settings_for(data_dir: Path, pairs: list[str]) -> Settings:
    return load_settings("offline", overrides={"data_dir": data_dir, **overrides(pairs)})


def run_split(pipe: Pipeline, queries_file: Path, limit: int = 20) -> EvalResult:
    queries = read_queries(queries_file)

    def search(q: Any) -> list[str]:
        image = Image.open(q.image).convert("RGB") if q.image else None
        return [h.source for h in pipe.search(COLLECTION, q.query, image, limit)]

    return evaluate(queries, search)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=HERE / ".cache" / "base")
    ap.add_argument("--corpus", type=Path, default=HERE / "corpus")
    ap.add_argument("--split", choices=["dev", "test", "both"], default="dev")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--ingest", action="store_true", help="ingest the corpus first")
    ap.add_argument("--name", default=None, help="run name for eval/runs/<name>.json")
    ap.add_argument("--misses", action="store_true", help="print every miss")
    args = ap.parse_args(argv)

    if args.ingest and not any(p.strip().startswith("ingest.workers=") for p in args.set):
        # OCR in worker processes would bypass CachedOcr (it wraps this process's engine)
        # and pay full OCR on every experiment.
        args.set.append("ingest.workers=1")
    settings = settings_for(args.data_dir, args.set)
    pipe = cached_ocr_pipeline(settings)
    try:
        if args.ingest:
            start = time.perf_counter()
            report = pipe.ingest(COLLECTION, [str(args.corpus)])
            print(report.summary(), f"({time.perf_counter() - start:.0f}s)")
            for f in report.failed:
                print("failed:", f.source, f.error)
        splits = ["dev", "test"] if args.split == "both" else [args.split]
        record: dict[str, Any] = {"settings": args.set, "data_dir": str(args.data_dir)}
        for split in splits:
            result = run_split(pipe, HERE / f"queries.{split}.jsonl")
            print(f"\n[{split}] {' '.join(args.set) or 'defaults'}\n{result.table()}")
            if args.misses:
                for m in result.misses:
                    print(f"  rank {m['rank']}: {m['query'] or m['image']!r} -> {m['target']}; "
                          f"top {[Path(s).name for s in m['top']]}")
            record[split] = result.to_json()
        if args.name:
            (HERE / "runs").mkdir(exist_ok=True)
            (HERE / "runs" / f"{args.name}.json").write_text(json.dumps(record, indent=1))
    finally:
        pipe.close()


if __name__ == "__main__":
    main()
