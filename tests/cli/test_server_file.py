"""``server.json``: written private whatever was planted beside it, and believed only
when it is a private regular file of this user (tests run as root, so ``os.chown`` can
make a foreign-owned one)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from cli.remote import SERVER_FILE, ServerInfo, read_server_file, write_server_file

INFO = ServerInfo("http://127.0.0.1:8080", 4321, "the-local-token")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def planted(data: Path, content: dict[str, object] | None = None, perm: int = 0o600) -> Path:
    data.mkdir(parents=True, exist_ok=True)
    path = data / SERVER_FILE
    path.write_text(json.dumps(content or {"url": "http://evil.example", "pid": 1,
                                           "token": "attacker"}))
    os.chmod(path, perm)
    return path


def test_round_trip_and_mode(tmp_path: Path) -> None:
    path = write_server_file(tmp_path / "data", INFO)
    assert mode(path) == 0o600
    assert read_server_file(tmp_path / "data") == INFO
    assert [p.name for p in (tmp_path / "data").iterdir()] == [SERVER_FILE]  # no temp left


def test_a_planted_0644_server_tmp_does_not_matter(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    tmp = data / "server.tmp"
    tmp.write_text("left behind")
    os.chmod(tmp, 0o644)
    old_umask = os.umask(0)  # a permissive umask must not widen the file either
    try:
        path = write_server_file(data, INFO)
    finally:
        os.umask(old_umask)
    assert mode(path) == 0o600
    assert read_server_file(data) == INFO
    assert tmp.read_text() == "left behind"


def test_a_symlinked_server_tmp_is_not_followed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, data / "server.tmp")
    write_server_file(data, INFO)
    assert victim.read_text() == "precious"
    assert not (data / SERVER_FILE).is_symlink() and mode(data / SERVER_FILE) == 0o600


def test_a_planted_server_json_symlink_is_replaced_not_written_through(tmp_path: Path
                                                                        ) -> None:
    data = tmp_path / "data"
    data.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, data / SERVER_FILE)
    assert read_server_file(data) is None  # a symlink is not believed
    write_server_file(data, INFO)
    assert victim.read_text() == "precious"
    assert read_server_file(data) == INFO


@pytest.mark.parametrize("perm", [0o644, 0o640, 0o604, 0o660, 0o602], ids=lambda p: f"{p:03o}")
def test_the_reader_ignores_a_file_others_can_read_or_write(
    tmp_path: Path, perm: int, caplog: pytest.LogCaptureFixture
) -> None:
    planted(tmp_path, perm=perm)
    with caplog.at_level("WARNING"):
        assert read_server_file(tmp_path) is None
    assert f"mode is {perm:03o}" in caplog.text


@pytest.mark.skipif(os.getuid() != 0, reason="making a foreign-owned file needs root")
def test_the_reader_ignores_a_foreign_owned_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = planted(tmp_path)
    os.chown(path, 4242, 4242)
    with caplog.at_level("WARNING"):
        assert read_server_file(tmp_path) is None
    assert "owned by uid 4242" in caplog.text


def test_the_reader_ignores_a_fifo_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / SERVER_FILE, 0o600)
    assert read_server_file(tmp_path) is None


def test_a_private_file_of_this_user_is_believed(tmp_path: Path) -> None:
    planted(tmp_path, {"url": "http://127.0.0.1:1", "pid": 7, "token": "t"})
    assert read_server_file(tmp_path) == ServerInfo("http://127.0.0.1:1", 7, "t")


def test_the_reason_is_told_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    planted(tmp_path / "once", perm=0o644)
    with caplog.at_level("WARNING"):
        for _ in range(3):
            read_server_file(tmp_path / "once")
    assert caplog.text.count("ignoring") == 1
