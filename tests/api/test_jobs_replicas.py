"""Two ``mmrag serve`` processes over one jobs folder (``api.jobs_dir``), as API replicas
behind a load balancer: an upload accepted by one is answered by the other
(``GET /v1/jobs/{id}``), and when the replica running a job is killed (``kill -9``), the
next replica that starts resumes it and every replica sees it finish."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import free_port
from tests.conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.slow

PICTURES = ["disk_full_terminal.png", "sshd_hardening_terminal.png", "vpn_client_error.bmp",
            "latency_alert_rule.tiff", "smtp_relay_settings.webp", "csv_import_errors.gif"]


@contextmanager
def replica(data: Path, jobs: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "MMRAG_API__JOBS_DIR": str(jobs)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--profile",
         "offline", "--data-dir", str(data)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while not _up(url):
        assert proc.poll() is None and time.monotonic() < deadline, "the replica never came up"
        time.sleep(0.5)
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def job(url: str, job_id: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/v1/jobs/{job_id}", timeout=10)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def wait(url: str, job_id: str, until: Any, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not until(state := job(url, job_id)):
        assert time.monotonic() < deadline, f"job {job_id} stuck at {state['status']}"
        time.sleep(0.2)
    return state


def upload(url: str, names: list[str]) -> str:
    files = [("files", (n, (EXAMPLES / "corpus" / n).read_bytes())) for n in names]
    r = httpx.post(f"{url}/v1/collections/pics/documents", files=files, timeout=60)
    assert r.status_code == 202, r.text
    job_id: str = r.json()["id"]
    return job_id


def test_any_replica_answers_for_a_job_and_a_dead_replicas_job_is_resumed(
    tmp_path: Path
) -> None:
    jobs = tmp_path / "shared-jobs"
    with replica(tmp_path / "a", jobs) as (a, a_proc), replica(tmp_path / "b", jobs) as (b, _):
        first = upload(a, ["backup_restore_policy.txt"])
        done = wait(b, first, lambda s: s["status"] == "done")
        assert [f["status"] for f in done["files"]] == ["added"]
        assert job(a, first)["files"] == done["files"]
        assert httpx.get(f"{b}/v1/jobs/{'0' * 32}").status_code == 404

        second = upload(a, PICTURES)  # OCR: seconds per file
        wait(b, second, lambda s: s["status"] == "running" and s["files_done"] >= 1)
        os.killpg(a_proc.pid, signal.SIGKILL)  # the replica running it dies
        a_proc.wait(timeout=60)
        assert job(b, second)["status"] == "running"  # b does not run it: its claim was a's
        with replica(tmp_path / "c", jobs) as (c, _):  # a replica starts (or restarts)
            final = wait(b, second, lambda s: s["status"] == "done")
            assert [f["source"] for f in final["files"]] == [f"upload/{n}" for n in PICTURES]
            assert all(f["status"] == "added" for f in final["files"])
            assert job(c, second) == final
