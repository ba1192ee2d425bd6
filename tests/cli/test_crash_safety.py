"""``kill -9`` at random moments, then the same ingest again: exactly a clean run's points.

Each trial starts ``mmrag ingest`` (with its worker pool) on a fresh data dir, kills the
whole process group with SIGKILL at a random moment of a clean run's duration, runs the
same ingest again to completion and compares ``mmrag documents --json`` and the
collection's point count with a clean run: nothing lost, nothing duplicated. A second
test kills ``mmrag serve`` in the middle of an upload job and checks that the restarted
server resumes the job by itself and ends with the same documents.

Trials: ``MMRAG_KILL_TRIALS`` (default 3); seeds are fixed so a failure replays.
"""

from __future__ import annotations

import json
import os
import random
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

TRIALS = int(os.environ.get("MMRAG_KILL_TRIALS", "3"))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def mmrag(*args: str, data: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args, "--profile", "offline", "--data-dir",
         str(data)], capture_output=True, text=True, env=ENV, timeout=900, **kwargs)


def make_corpus(root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir()
    # One long Markdown file (hundreds of chunks: the kill often lands mid-file) and
    # several small ones around it.
    sections = []
    for i in range(160):
        sections.append(f"## Section {i}\n\nThe valve assembly {i} uses torque setting "
                        f"{i * 7 % 90 + 10} Nm and gasket type G{i % 13}. " * 6)
    (docs / "manual.md").write_text("# Pump manual\n\n" + "\n\n".join(sections))
    for i in range(6):
        (docs / f"note{i}.txt").write_text(f"Field note {i}: the heron nested near pier "
                                           f"{i} during week {i + 20}.")
    return docs


def snapshot(data: Path) -> tuple[list[dict[str, Any]], int]:
    docs = mmrag("documents", "--collection", "c", "--json", "--local", data=data)
    assert docs.returncode == 0, docs.stderr
    cols = mmrag("collections", "--json", "--local", data=data)
    assert cols.returncode == 0, cols.stderr
    total = {c["name"]: c["points"] for c in json.loads(cols.stdout)["collections"]}["c"]
    return json.loads(docs.stdout)["documents"], total


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]], int,
                                                             float]:
    root = tmp_path_factory.mktemp("kill")
    docs = make_corpus(root)
    started = time.monotonic()
    run = mmrag("ingest", str(docs), "--collection", "c", "--json", data=root / "clean")
    seconds = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    documents, total = snapshot(root / "clean")
    assert sum(d["points"] for d in documents) == total > 100
    return docs, documents, total, seconds


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_9_during_ingest_then_rerun_equals_a_clean_run(
    trial: int, clean: tuple[Path, list[dict[str, Any]], int, float], tmp_path: Path
) -> None:
    docs, expected, total, seconds = clean
    rng = random.Random(1000 + trial)
    delay = rng.uniform(0.25, 0.95) * seconds
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "ingest", str(docs), "--collection", "c",
         "--profile", "offline", "--data-dir", str(data)],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its worker processes, mid-whatever
    proc.wait()
    again = mmrag("ingest", str(docs), "--collection", "c", "--json", data=data)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)  # --json: exactly one JSON document on stdout
    assert {f["status"] for f in report["files"]} <= {"added", "unchanged", "replaced"}
    documents, count = snapshot(data)
    assert documents == expected, f"killed after {delay:.1f}s"
    assert count == total


def test_kill_9_during_a_rebuild_then_rerun_equals_a_clean_run(
    clean: tuple[Path, list[dict[str, Any]], int, float], tmp_path: Path
) -> None:
    docs, expected, total, seconds = clean
    data = tmp_path / "data"
    first = mmrag("ingest", str(docs), "--collection", "c", data=data)
    assert first.returncode == 0, first.stderr
    rebuilt = mmrag("ingest", str(docs), "--collection", "c", "--rebuild", data=data)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "7 rebuilt (rebuild requested)" in rebuilt.stdout
    assert snapshot(data) == (expected, total)
    for trial in range(TRIALS):
        delay = random.Random(2000 + trial).uniform(0.25, 0.95) * seconds
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "ingest", str(docs), "--collection", "c",
             "--rebuild", "--profile", "offline", "--data-dir", str(data)],
            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        again = mmrag("ingest", str(docs), "--collection", "c", "--json", data=data)
        assert again.returncode == 0, again.stderr
        statuses = {f["status"] for f in json.loads(again.stdout)["files"]}
        assert statuses <= {"added", "unchanged"}, statuses
        assert snapshot(data) == (expected, total), f"killed after {delay:.1f}s"


def test_kill_9_of_the_server_mid_job_resumes_after_restart(
    clean: tuple[Path, list[dict[str, Any]], int, float], tmp_path: Path
) -> None:
    docs, _, _, _ = clean
    data = tmp_path / "data"
    files = sorted(docs.iterdir())

    def serve() -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--profile",
             "offline", "--data-dir", str(data)],
            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    return proc, url
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.5)

    proc, url = serve()
    upload = [("files", (f.name, f.read_bytes())) for f in files]
    job = httpx.post(f"{url}/v1/collections/c/documents", files=upload, timeout=120).json()
    # Kill once the job is under way (or at the latest after a few seconds).
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = httpx.get(f"{url}/v1/jobs/{job['id']}", timeout=30).json()
        if state["status"] == "running":
            break
        time.sleep(0.2)
    time.sleep(1.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc, url = serve()
    try:
        deadline = time.monotonic() + 600
        while True:
            state = httpx.get(f"{url}/v1/jobs/{job['id']}", timeout=30).json()
            if state["status"] in ("done", "failed", "cancelled"):
                break
            assert time.monotonic() < deadline, f"job still {state['status']}"
            time.sleep(0.5)
        assert state["status"] == "done", state
        rows = httpx.get(f"{url}/v1/collections/c/documents", timeout=30).json()["data"]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # The same files ingested cleanly: one document each, with the same point counts.
    _, clean_rows, _, _ = clean
    expected = {Path(d["source"]).name: d["points"] for d in clean_rows}
    assert {Path(r["source"]).name: r["points"] for r in rows} == expected
    assert len(rows) == len(files)


# The child that deletes: a real pipeline on the data dir, whose store announces each
# engine delete on stdout just before making it, so the parent can kill -9 inside the
# delete (after its tombstone, before or during the removal of the points) every time.
DELETER = """
import sys
from pipeline import Pipeline
from rag.settings import load_settings

data, backend, source = sys.argv[1:4]
store = {"backend": "qdrant", "path": data + "/qdrant"} if backend == "qdrant" else {}
pipe = Pipeline(load_settings("offline", overrides={"data_dir": data, "store": store}))
real = pipe._store.delete

def announced(collection, flt):
    print("DELETE", flt.modality, flush=True)
    return real(collection, flt)

pipe._store.delete = announced
print("DELETED", pipe.delete_source("c", source), flush=True)
"""


@pytest.mark.parametrize("backend", ["edge", "qdrant"])
def test_kill_9_inside_a_delete_then_ingest_and_delete_equal_clean_runs(
    backend: str, clean: tuple[Path, list[dict[str, Any]], int, float], tmp_path: Path
) -> None:
    """A delete killed at its first engine delete (the points, after the tombstone) or at
    its second (the tombstone), on Qdrant Edge and on qdrant-client's local mode (which
    removes rows one by one): the document is never listed or found half-there; the next
    ingest writes it whole again and the next delete removes it completely."""
    from pipeline import Pipeline
    from rag.store.records import CONTENT
    from rag.types import Filter
    from tests.conftest import offline

    docs, expected, total, _ = clean
    manual = str(docs / "manual.md")
    without = [d for d in expected if d["source"] != manual]
    manual_points = next(d["points"] for d in expected if d["source"] == manual)
    rng = random.Random(7)
    leftovers = 0
    for trial, step in enumerate((1, 1, 2)):
        data = tmp_path / f"d{trial}"
        store = {"backend": "qdrant", "path": str(data / "qdrant")} if backend == "qdrant" \
            else {}
        with Pipeline(offline(data, store=store)) as pipe:
            pipe.ingest("c", [str(docs)])
            assert pipe.documents("c") == expected
        proc = subprocess.Popen(
            [sys.executable, "-c", DELETER, str(data), backend, manual], env=ENV,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True)
        assert proc.stdout is not None
        seen = 0
        for line in proc.stdout:
            if line.startswith("DELETE "):
                seen += 1
                if seen == step:
                    time.sleep(rng.uniform(0.0, 0.01))
                    break
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert seen == step, f"the delete never reached engine delete {step}"
        with Pipeline(offline(data, store=store)) as pipe:
            left = pipe._store.count("c", Filter(source=manual))
            leftovers += left > 0
            # Never half there, whatever the kill left behind:
            assert pipe.documents("c") == without, (trial, left)
            hits = pipe.search("c", "valve assembly torque gasket", limit=20)
            assert hits and all(h.source != manual for h in hits)
            assert pipe.count("c") == total - manual_points
            report = pipe.ingest("c", [str(docs)])
            assert {f.source: f.status for f in report.files}[manual] == "added"
            assert pipe.documents("c") == expected and pipe.count("c") == total
            pipe.delete_source("c", manual)
            assert pipe.documents("c") == without
            assert pipe._store.count("c", Filter(source=manual)) == 0
            assert pipe._store.count("c", Filter(modality=CONTENT)) == total - manual_points
    # The kills landed inside the deletes: some of the manual was still stored.
    assert leftovers >= 2, leftovers
