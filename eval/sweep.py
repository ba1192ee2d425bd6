"""Compare retrieval settings on the stored eval collection in one process (models and
the store load once). Only ``retrieval.*`` settings: nothing is re-ingested.

    python eval/sweep.py "retrieval.doc_weight=0" "retrieval.doc_weight=0.3" \\
        "retrieval.doc_weight=0.3 retrieval.weights={text: 1.0, bm25: 0.7}"

Each argument is one variant: space-separated KEY=VALUE pairs over the offline profile.
Dev split unless ``--split test``.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from run_eval import HERE, cached_ocr_pipeline, run_split, settings_for

from rag.rerank import build_reranker
from rag.retrieve import Retriever


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--data-dir", type=Path, default=HERE / ".cache" / "base")
    ap.add_argument("--split", choices=["dev", "test"], default="dev")
    ap.add_argument("--misses", action="store_true")
    args = ap.parse_args()
    pipe = cached_ocr_pipeline(settings_for(args.data_dir, []))
    try:
        for variant in args.variants:
            pairs = shlex.split(variant)
            retrieval = settings_for(args.data_dir, pairs).retrieval
            # Swap only the retriever (private, harness only): same store, models, OCR.
            pipe.__dict__["_retriever"] = Retriever(
                retrieval, pipe._store, pipe._encoders, build_reranker(retrieval),
                read_image=pipe._read_image if pipe._ocr is not None else None,
            )
            result = run_split(pipe, HERE / f"queries.{args.split}.jsonl")
            kinds = "  ".join(
                f"{k} {m.r1:.2f}/{m.r5:.2f}/{m.mrr:.3f}" for k, m in sorted(result.by_kind.items())
            )
            o = result.overall
            print(f"{variant or 'defaults':<60} all {o.r1:.3f}/{o.r5:.3f}/{o.mrr:.3f}  {kinds}",
                  flush=True)
            if args.misses:
                for m in result.misses:
                    print(f"    rank {m['rank']}: {m['query'] or m['image']!r} -> {m['target']}; "
                          f"top {[Path(s).name for s in m['top']]}")
    finally:
        pipe.close()


if __name__ == "__main__":
    main()
