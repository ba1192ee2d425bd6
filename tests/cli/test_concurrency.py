"""Several ``mmrag`` commands on one data dir at once, with and without a server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import free_port

pytestmark = pytest.mark.slow

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def cmd(*args: str, data: Path) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args, "--profile", "offline", "--data-dir",
            str(data)]


def run(*args: str, data: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd(*args, data=data), capture_output=True, text=True,
                          env=env or ENV, timeout=900)


def docs_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [d["source"] for d in json.loads(result.stdout)["documents"]]


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    for i in range(4):
        (first / f"bird{i}.txt").write_text(f"Kestrel sighting {i}: hovering over field {i}.")
        (second / f"fish{i}.txt").write_text(f"Trout count {i}: river section {i} at dawn.")
    data = tmp_path / "data"
    assert run("ingest", str(first), "--collection", "c", data=data).returncode == 0
    return first, second, data


def test_many_readers_and_a_writer_at_once(corpus: tuple[Path, Path, Path]) -> None:
    _, second, data = corpus
    procs = [subprocess.Popen(cmd("search", "kestrel hovering", "--collection", "c", "--json",
                                  data=data), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=ENV) for _ in range(4)]
    procs.append(subprocess.Popen(cmd("ingest", str(second), "--collection", "c", "--json",
                                      data=data), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=ENV))
    outputs = [p.communicate(timeout=900) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    for out, _ in outputs[:4]:
        hits = json.loads(out)["hits"]
        assert hits and Path(hits[0]["source"]).name.startswith("bird")
    report = json.loads(outputs[4][0])
    assert [f["status"] for f in report["files"]] == ["added"] * 4
    sources = docs_of(run("documents", "--collection", "c", "--json", data=data))
    assert len(sources) == 8


def test_commands_go_through_a_running_server(corpus: tuple[Path, Path, Path]) -> None:
    _, second, data = corpus
    port = free_port()
    server = subprocess.Popen(
        cmd("serve", "--port", str(port), data=data), env=ENV, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (data / "server.json").exists() or not _up(port):
            assert server.poll() is None and time.monotonic() < deadline, "no server"
            time.sleep(0.5)
        found = run("search", "kestrel", "--collection", "c", "--json", data=data)
        assert found.returncode == 0, found.stderr
        assert Path(json.loads(found.stdout)["hits"][0]["source"]).name.startswith("bird")
        # Ingest through the server: the files are read in place, names as given.
        ingested = subprocess.run(
            cmd("ingest", "second", "--collection", "c", "--json", data=data),
            capture_output=True, text=True, env=ENV, timeout=900, cwd=second.parent)
        assert ingested.returncode == 0, ingested.stderr
        report: dict[str, Any] = json.loads(ingested.stdout)
        assert sorted(f["source"] for f in report["files"]) == [
            f"second/fish{i}.txt" for i in range(4)]
        assert all(f["status"] == "added" for f in report["files"])
        sources = docs_of(run("documents", "--collection", "c", "--json", data=data))
        assert "second/fish0.txt" in sources and len(sources) == 8
        # --local insists on opening the store itself: the server holds it, so it waits,
        # then says who holds it and what to do.
        quick = {**ENV, "MMRAG_STORE__LOCK_TIMEOUT_S": "2"}
        local = run("collections", "--local", data=data, env=quick)
        assert local.returncode == 2
        assert "busy" in local.stderr and "mmrag serve" in local.stderr
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    assert not (data / "server.json").exists()


def _up(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
