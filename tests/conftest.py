"""Shared fixtures. Everything here is real: packaged MiniLM, rapidocr, Qdrant Edge,
qdrant-client local mode, and a tiny randomly initialised open_clip model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach a model hub: a model that is not packaged must fail fast.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The text encoder's ONNX export (text.runtime auto, ~17 s) is made once for the whole
# run, not once per test's data dir; CLI and server subprocesses inherit it.
os.environ.setdefault(
    "MMRAG_TEXT__EXPORT_DIR",
    str(Path(__file__).resolve().parent.parent / ".pytest_cache" / "mmrag-models"),
)

from rag.settings import Settings, load_settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY_CLIP = ROOT / "tests" / "fixtures" / "mmrag-tiny-clip.json"
EXAMPLES = ROOT / "examples"


def offline(data_dir: Path, **overrides: object) -> Settings:
    return load_settings("offline", overrides={"data_dir": data_dir, **overrides})


def tiny_clip(
    data_dir: Path,
    clip_batch: int | None = None,
    workers: int | None = None,
    precision: str | None = None,
    **overrides: object,
) -> Settings:
    """The default profile with CLIP swapped for a tiny random open_clip model: checks the
    CLIP path's plumbing and persistence, never its semantics."""
    clip: dict[str, object] = {
        "model": "mmrag-tiny-clip", "pretrained": None, "model_config_path": str(TINY_CLIP)
    }
    extra = {"batch_size": clip_batch, "preprocess_workers": workers, "precision": precision}
    clip.update({k: v for k, v in extra.items() if v is not None})
    return load_settings(
        "default", overrides={"data_dir": data_dir, "offline": True, "clip": clip, **overrides}
    )


@pytest.fixture
def offline_settings(tmp_path: Path) -> Settings:
    return offline(tmp_path / "data")


@pytest.fixture
def clip_settings(tmp_path: Path) -> Settings:
    return tiny_clip(tmp_path / "data")
