"""Data dirs are created private (0700) wherever mmrag may create them first, and an
existing open one is reported, not changed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cli.remote import ServerInfo, write_server_file
from pipeline.datadir import ensure_private_dir
from pipeline.gate import StoreGate


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> object:
    """The usual 022 umask: what made data dirs 0755 before."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_new_dirs_and_missing_parents_are_0700(tmp_path: Path) -> None:
    data = ensure_private_dir(tmp_path / "a" / "b" / "data")
    assert mode(data) == 0o700
    assert mode(tmp_path / "a") == 0o700 and mode(tmp_path / "a" / "b") == 0o700
    os.umask(0)
    assert mode(ensure_private_dir(tmp_path / "wide")) == 0o700


def test_an_existing_open_dir_is_reported_once_and_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o750)
    with caplog.at_level("WARNING"):
        ensure_private_dir(shared)
        ensure_private_dir(shared)
    assert mode(shared) == 0o750
    assert caplog.text.count("mode 750") == 1 and "chmod 700" in caplog.text


def test_every_first_creator_makes_it_private(tmp_path: Path) -> None:
    write_server_file(tmp_path / "by-serve", ServerInfo("http://127.0.0.1:1", 1, "t"))
    gate = StoreGate(tmp_path / "by-gate" / "store.lock", lambda: None, timeout_s=1)
    with gate.hold():
        pass
    gate.close()
    for name in ("by-serve", "by-gate"):
        assert mode(tmp_path / name) == 0o700, name
    assert mode(tmp_path / "by-gate" / "store.lock") == 0o600
