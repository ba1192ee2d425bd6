from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import ConfigError
from rag.settings import available_profiles, deep_merge, load_settings


def test_profiles_exist() -> None:
    assert {"default", "offline", "server"} <= set(available_profiles())


def test_default_profile_is_full_pipeline() -> None:
    s = load_settings("default")
    assert s.clip.enabled and s.clip.model == "ViT-B-32"
    assert s.clip.pretrained == "laion2b_s34b_b79k"
    assert s.text.model == "all-MiniLM-L6-v2" and s.sparse.enabled and s.ocr.enabled
    assert s.store.backend == "edge"


def test_offline_profile_turns_clip_off_and_keeps_the_rest() -> None:
    s = load_settings("offline")
    assert not s.clip.enabled and s.offline
    assert s.text.enabled and s.sparse.enabled and s.ocr.enabled
    assert s.generator.backend == "extractive"


def test_environment_beats_profile_and_overrides_beat_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MMRAG_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("MMRAG_STORE__BACKEND", "qdrant")
    monkeypatch.setenv("MMRAG_RETRIEVAL__FUSION", "dbsf")
    s = load_settings("offline")
    assert s.data_path == tmp_path / "env"
    assert s.store.backend == "qdrant" and s.retrieval.fusion == "dbsf"
    assert not s.clip.enabled  # the profile still applies where env is silent
    s2 = load_settings("offline", overrides={"data_dir": tmp_path / "flag"})
    assert s2.data_path == tmp_path / "flag"


def test_profile_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_PROFILE", "offline")
    assert load_settings().profile == "offline"


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown profile 'nope'.*offline"):
        load_settings("nope")


def test_invalid_value_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text("store:\n  backend: mongodb\n")
    with pytest.raises(ConfigError, match="default"):
        load_settings("default", config_dir=tmp_path)


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text("stroe:\n  backend: edge\n")
    with pytest.raises(ConfigError):
        load_settings("default", config_dir=tmp_path)


def test_deep_merge() -> None:
    assert deep_merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": 3}, "e": 4}) == {
        "a": {"b": 3, "c": 2}, "d": 1, "e": 4,
    }


def test_typo_in_a_section_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text("retrieval:\n  fusoin: rrf\n")
    with pytest.raises(ConfigError, match="fusoin"):
        load_settings("default", config_dir=tmp_path)
