"""``mmrag ingest --executor ray --ray-address ADDR`` reach the settings the pipeline
builds its runner from; without the flags the profile's (and MMRAG_*) values stand."""

from __future__ import annotations

import pytest

from cli.common import settings_from_args
from cli.main import build_parser


def test_executor_flags_become_ingest_settings() -> None:
    args = build_parser().parse_args(
        ["ingest", "docs", "--collection", "c", "--profile", "offline",
         "--executor", "ray", "--ray-address", "auto"])
    settings = settings_from_args(args)
    assert settings.ingest.executor == "ray" and settings.ingest.ray_address == "auto"
    assert settings.ocr.enabled and not settings.clip.enabled  # the rest is the profile's


def test_without_flags_the_environment_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_INGEST__EXECUTOR", "ray")
    args = build_parser().parse_args(["ingest", "docs", "--collection", "c"])
    assert settings_from_args(args).ingest.executor == "ray"
    local = build_parser().parse_args(["ingest", "docs", "--collection", "c",
                                       "--executor", "local"])
    assert settings_from_args(local).ingest.executor == "local"


def test_an_unknown_executor_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ingest", "docs", "--collection", "c",
                                   "--executor", "dask"])
