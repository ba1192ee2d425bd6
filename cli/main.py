"""``mmrag``: the pipeline from a terminal. Every command builds Settings once from
``--profile``/``--data-dir`` (and ``MMRAG_*``), then calls one pipeline method.

Exit codes: 0 ok, 1 some files failed to ingest, 2 usage or input error, 3 a model or
endpoint is unavailable.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from cli import mcp, serve
from cli.common import common_options, connect, open_image
from rag.errors import MmragError, ModelUnavailable, UpstreamError
from rag.timecode import time_range
from rag.types import MODALITIES, Filter


def _filter(args: argparse.Namespace) -> Filter | None:
    meta = dict(kv.split("=", 1) for kv in (getattr(args, "where", None) or []))
    flt = Filter(
        modality=args.modality or None,
        source_prefix=getattr(args, "source_prefix", None),
        metadata=meta,
    )
    return None if flt.is_empty() else flt


def _progress_bar(total_hint: int | None = None) -> tuple[Any, Any]:
    from tqdm import tqdm

    bar = tqdm(total=total_hint, unit="file", file=sys.stderr, dynamic_ncols=True,
               disable=None)

    def on_progress(p: Any) -> None:
        if bar.total != p.files_total:
            bar.total = p.files_total
        bar.n = p.files_done
        bar.set_postfix_str(f"chunks={p.chunks} {Path(p.current).name[:40]}", refresh=False)
        bar.refresh()
        if p.result is not None and p.result.status == "failed":
            bar.write(f"skipped {p.result.error}", file=sys.stderr)

    return bar, on_progress


def cmd_ingest(args: argparse.Namespace) -> int:
    pipe = connect(args)
    meta = dict(kv.split("=", 1) for kv in (args.meta or []))
    bar, on_progress = _progress_bar()
    try:
        report = pipe.ingest(args.collection, args.paths, metadata=meta, progress=on_progress,
                             rebuild=args.rebuild)
    finally:
        bar.close()
        pipe.close()
    if args.json:
        print(json.dumps({"summary": report.summary(),
                          "files": [vars(f) for f in report.files]}, indent=2))
    else:
        for f in report.files:
            if f.status == "duplicate":
                print(f"duplicate {f.source}: {f.error}", file=sys.stderr)
        print(report.summary())
        for f in report.failed:
            print(f"failed: {f.error}", file=sys.stderr)
    return 1 if report.failed else 0


def cmd_search(args: argparse.Namespace) -> int:
    pipe = connect(args)
    try:
        hits = pipe.search(args.collection, args.text, open_image(args.image, pipe), args.limit,
                           _filter(args))
    finally:
        pipe.close()
    if args.json:
        print(json.dumps({"hits": [h.to_json() for h in hits]}, ensure_ascii=False))
        return 0
    if not hits:
        print("no hits")
    for i, h in enumerate(hits, 1):
        snippet = " ".join(h.text.split())[:160]
        place = f"at {time_range(h.start, h.end)}" if h.start is not None else f"p.{h.page}"
        print(f"{i:>2}. {h.score:.3f}  {h.source}  {place} [{h.modality}]")
        if snippet:
            print(f"      {snippet}")
    return 0


def cmd_collections(args: argparse.Namespace) -> int:
    pipe = connect(args)
    try:
        rows = pipe.collections()
    finally:
        pipe.close()
    if args.json:
        print(json.dumps({"collections": rows}))
    else:
        for row in rows:
            print(f"{row['name']}\t{row['points']} points")
        if not rows:
            print("no collections yet: mmrag ingest PATH --collection NAME")
    return 0


def cmd_documents(args: argparse.Namespace) -> int:
    pipe = connect(args)
    try:
        rows = pipe.documents(args.collection)
    finally:
        pipe.close()
    if args.json:
        print(json.dumps({"documents": rows}))
    else:
        for r in rows:
            print(f"{r['source']}\t{r['mime']}\t{r['pages']} pages\t{r['points']} points")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    pipe = connect(args)
    try:
        n = pipe.delete_source(args.collection, args.source)
    finally:
        pipe.close()
    print(f"deleted {args.source} ({n} points) from {args.collection!r}")
    return 0


def cmd_drop(args: argparse.Namespace) -> int:
    pipe = connect(args)
    try:
        pipe.drop(args.collection)
    finally:
        pipe.close()
    print(f"dropped collection {args.collection!r}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.evaluate import evaluate, read_queries

    pipe = connect(args)
    queries = read_queries(Path(args.queries))
    from tqdm import tqdm

    bar = tqdm(total=len(queries), unit="query", file=sys.stderr, disable=None)

    def search(q: Any) -> list[str]:
        image = open_image(str(q.image), pipe) if q.image else None
        hits = pipe.search(args.collection, q.query, image, args.limit)
        bar.update(1)
        return [h.source for h in hits]

    try:
        result = evaluate(queries, search)
    finally:
        bar.close()
        pipe.close()
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.table())
        if args.show_misses:
            for m in result.misses:
                print(f"miss (rank {m['rank']}): {m['query'] or m['image']!r} -> {m['target']}; "
                      f"top: {m['top']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmrag", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="ingest files and folders into a collection")
    p.add_argument("paths", nargs="+")
    p.add_argument("--collection", required=True)
    p.add_argument("--meta", action="append", metavar="KEY=VALUE", help="metadata for all files")
    p.add_argument("--json", action="store_true")
    p.add_argument("--rebuild", action="store_true",
                   help="write stored documents again even when their bytes and the text "
                   "pipeline that wrote them are current (a stale one is rebuilt anyway)")
    p.add_argument("--executor", choices=("local", "ray"), default=None,
                   help="where the stages run: this machine (default) or a Ray cluster "
                   "(ingest.executor; needs `pip install 'mmrag[ray]'`)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="the Ray cluster to join ('auto', 'ray://head:10001'; default "
                   "$RAY_ADDRESS, else a private one on this machine)")
    common_options(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("search", help="search a collection with text and/or an image")
    p.add_argument("text", nargs="?", default="")
    p.add_argument("--collection", required=True)
    p.add_argument("--image", default=None)
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--modality", action="append", choices=MODALITIES)
    p.add_argument("--source-prefix", default=None)
    p.add_argument("--where", action="append", metavar="KEY=VALUE", help="metadata filter")
    p.add_argument("--json", action="store_true")
    common_options(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("collections", help="list collections")
    p.add_argument("--json", action="store_true")
    common_options(p)
    p.set_defaults(func=cmd_collections)

    p = sub.add_parser("documents", help="list the sources stored in a collection")
    p.add_argument("--collection", required=True)
    p.add_argument("--json", action="store_true")
    common_options(p)
    p.set_defaults(func=cmd_documents)

    p = sub.add_parser("delete", help="remove a source from a collection")
    p.add_argument("source")
    p.add_argument("--collection", required=True)
    common_options(p)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("drop", help="delete a whole collection")
    p.add_argument("collection")
    common_options(p)
    p.set_defaults(func=cmd_drop)

    p = sub.add_parser("eval", help="R@1, R@5, MRR of a queries.jsonl against a collection")
    p.add_argument("queries")
    p.add_argument("--collection", required=True)
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.add_argument("--show-misses", action="store_true")
    common_options(p)
    p.set_defaults(func=cmd_eval)

    serve.add_commands(sub)
    mcp.add_commands(sub)
    return parser


def _log_to_stderr() -> None:
    """mmrag's own notices (a one-time model export, jobs resumed) as ``mmrag: ...``
    lines on stderr; stdout stays the command's output."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("mmrag: %(message)s"))
    for name in ("rag", "ingest", "pipeline", "cli"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.setLevel(logging.INFO)
            logger.addHandler(handler)
            logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _log_to_stderr()
    try:
        return int(args.func(args) or 0)
    except (ModelUnavailable, UpstreamError) as exc:
        print(f"mmrag: {exc}", file=sys.stderr)
        return 3
    except MmragError as exc:
        print(f"mmrag: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
