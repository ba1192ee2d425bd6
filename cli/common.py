"""What every ``mmrag`` command shares: the common options, Settings from them, the
pipeline, and the query image of ``--image``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rag.settings import Settings, load_settings

if TYPE_CHECKING:
    from PIL import Image

    from pipeline import Pipeline


def common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None, help="settings profile (configs/<name>.yaml)")
    p.add_argument("--data-dir", default=None, help="where embedded data lives (MMRAG_DATA_DIR)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    return load_settings(args.profile, overrides=overrides)


def pipeline_from_args(args: argparse.Namespace) -> Pipeline:
    from pipeline import Pipeline

    return Pipeline(settings_from_args(args))


def open_image(path: str | None, pipe: Pipeline) -> Image.Image | None:
    """A query image, read with the same loader and limits as ingested files."""
    return pipe.read_image(path) if path else None
