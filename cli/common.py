"""What every ``mmrag`` command shares: the common options, Settings from them, the
pipeline, and the query image of ``--image``."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from cli.remote import RemotePipeline, find_server
from pipeline.datadir import ensure_private_dir
from rag.settings import Settings, load_settings

if TYPE_CHECKING:

    from pipeline import Pipeline


def common_options(p: argparse.ArgumentParser, local_flag: bool = True) -> None:
    p.add_argument("--profile", default=None, help="settings profile (configs/<name>.yaml)")
    p.add_argument("--data-dir", default=None, help="where embedded data lives (MMRAG_DATA_DIR)")
    if local_flag:
        p.add_argument("--local", action="store_true",
                       help="run in this process even if `mmrag serve` runs on the data dir")


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    ingest = {k: v for k, v in (("executor", getattr(args, "executor", None)),
                                ("ray_address", getattr(args, "ray_address", None))) if v}
    if ingest:
        overrides["ingest"] = ingest
    return load_settings(args.profile, overrides=overrides)


def _say(message: str) -> None:
    print(f"mmrag: {message}", file=sys.stderr, flush=True)


def connect(args: argparse.Namespace) -> Pipeline | RemotePipeline:
    """The server running on this data dir if there is one (warm, and the only process
    that may open its store), else a pipeline in this process that takes turns at the
    store with any other mmrag command (see pipeline/gate.py)."""
    settings = settings_from_args(args)
    if not getattr(args, "local", False):
        info = find_server(settings.data_path)
        if info is not None:
            return RemotePipeline(info)
    from pipeline import Pipeline

    ensure_private_dir(settings.data_path)
    return Pipeline(settings, on_wait=_say)


def open_image(path: str | None, pipe: Any) -> Any:
    """A query image, read with the same loader and limits as ingested files."""
    return pipe.read_image(path) if path else None
