"""Backend choice by name; an unknown name is a ConfigError that lists the known ones."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rag.errors import ConfigError
from rag.generate import BACKENDS, build_generator
from rag.generate.extractive import ExtractiveGenerator
from rag.generate.hf_transformers import TransformersGenerator
from rag.generate.openai_chat import OpenAIGenerator
from rag.media import MediaStore
from rag.settings import Settings


@pytest.mark.parametrize(
    ("name", "cls"),
    [("extractive", ExtractiveGenerator), ("openai", OpenAIGenerator),
     ("transformers", TransformersGenerator)],
)
def test_backends(name: str, cls: type, tmp_path: Path) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path, "generator": {"backend": name}})
    gen = build_generator(settings, MediaStore(tmp_path / "media"))
    assert isinstance(gen, cls)
    assert set(BACKENDS) == {"extractive", "openai", "transformers"}


def test_transformers_backend_inherits_offline(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {"data_dir": tmp_path, "offline": True, "generator": {"backend": "transformers"}}
    )
    gen = build_generator(settings, MediaStore(tmp_path))
    assert isinstance(gen, TransformersGenerator) and gen.offline


def test_unknown_backend(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {"data_dir": tmp_path, "generator": {"backend": "gpt-telepathy"}}
    )
    with pytest.raises(ConfigError, match=r"unknown generator backend 'gpt-telepathy'.*extractive"):
        build_generator(settings, MediaStore(tmp_path))


def test_package_import_pulls_in_no_model_library() -> None:
    """Choosing ``extractive`` must not pay for importing torch/transformers/openai."""
    import subprocess

    code = (
        "import sys, rag.generate, rag.generate.extractive;"
        "print(sorted(m for m in ('openai', 'transformers', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip() == "[]"
