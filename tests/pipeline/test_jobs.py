"""Ingest jobs: every transition, persistence, and resuming after a process died."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline import Pipeline
from pipeline.jobs import (
    FINAL,
    Job,
    JobStateError,
    JobStore,
    cancel,
    complete,
    fail,
    requeue,
    start,
)
from pipeline.runner import FileResult
from rag.errors import NotFound
from tests.conftest import offline


def job(status: str = "queued") -> Job:
    j = Job(id="abc123", collection="c", files=[FileResult("a.txt"), FileResult("b.txt")])
    j.status = status  # type: ignore[assignment]
    return j


def test_queued_job_runs_then_completes() -> None:
    j = job()
    start(j)
    assert j.status == "running" and j.attempts == 1
    files = [FileResult("a.txt", "added", 3), FileResult("b.txt", "unchanged")]
    complete(j, files)
    assert j.status == "done" and j.files == files and j.files_done == 2
    assert j.finished is not None and j.final


@pytest.mark.parametrize("status", ["queued", "running"])
def test_fail_and_cancel_from_any_unfinished_state(status: str) -> None:
    failed, cancelled = job(status), job(status)
    fail(failed, "the store is gone")
    cancel(cancelled, "shutting down")
    assert (failed.status, failed.error) == ("failed", "the store is gone")
    assert (cancelled.status, cancelled.error) == ("cancelled", "shutting down")
    assert failed.finished and cancelled.finished


@pytest.mark.parametrize("status", FINAL)
def test_a_finished_job_never_changes_again(status: str) -> None:
    j = job(status)
    for transition in (start, requeue, lambda x: fail(x, "again"), lambda x: cancel(x, "no"),
                       lambda x: complete(x, [])):
        with pytest.raises(JobStateError):
            transition(j)
    assert j.status == status


def test_complete_needs_a_running_job() -> None:
    with pytest.raises(JobStateError):
        complete(job("queued"), [])


def test_interrupted_job_is_requeued_with_its_results_cleared() -> None:
    j = job("running")
    j.files_done, j.chunks = 1, 7
    j.files[0] = FileResult("a.txt", "added", 5, 7)
    requeue(j)
    assert j.status == "queued" and j.files_done == 0 and j.chunks == 0
    assert [f.status for f in j.files] == ["pending", "pending"]
    start(j)
    assert j.attempts == 1


def test_store_round_trip_and_unfinished(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    a = store.new("c", ["x.txt"], {"team": "ops"})
    store.save(a)
    time.sleep(0.01)
    b = store.new("c", ["y.txt"])
    start(b)
    store.save(b)
    done = store.new("c", ["z.txt"])
    start(done)
    complete(done, [])
    store.save(done)
    assert store.get(a.id) == a and store.get(a.id).metadata == {"team": "ops"}
    assert [j.id for j in store.unfinished()] == [a.id, b.id]
    with pytest.raises(NotFound):
        store.get("../etc/passwd")
    (tmp_path / f"{'b' * 32}.json").write_text("{not json")
    with pytest.raises(NotFound, match="unreadable"):
        store.get("b" * 32)


def _spool(pipe: Pipeline, files: dict[str, bytes]) -> Job:
    job, spool = pipe.new_job("c", list(files))
    for i, data in enumerate(files.values()):
        (spool / f"{i:05d}").write_bytes(data)
    return job


def _wait(pipe: Pipeline, job_id: str, timeout: float = 120) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        j = pipe.job(job_id)
        if j.final:
            return j
        assert time.monotonic() < deadline, f"job still {j.status}"
        time.sleep(0.05)


def test_submitted_job_ingests_its_spooled_files(tmp_path: Path) -> None:
    with Pipeline(offline(tmp_path)) as pipe:
        j = pipe.submit_job(_spool(pipe, {"u/a.txt": b"Anchors hold boats.",
                                          "u/empty.txt": b""}))
        done = _wait(pipe, j.id)
        assert done.status == "done" and done.attempts == 1
        assert [f.status for f in done.files] == ["added", "failed"]
        assert "u/empty.txt" in (done.files[1].error or "")
        assert [d["source"] for d in pipe.documents("c")] == ["u/a.txt"]
        # The spool is removed right after the final state is saved (in that order, so
        # a crash in between leaves a finished job, never a live job without its files).
        deadline = time.monotonic() + 10
        while (tmp_path / "jobs" / j.id).exists():
            assert time.monotonic() < deadline, "the spool of a finished job stays"
            time.sleep(0.05)


def test_a_job_left_running_by_a_dead_process_resumes(tmp_path: Path) -> None:
    settings = offline(tmp_path)
    with Pipeline(settings) as first:
        j = _spool(first, {"u/a.txt": b"Kestrels hover over fields.",
                           "u/b.txt": b"Otters crack shells on stones."})
        # What a process killed mid-job leaves behind: "running" on disk, files spooled.
        start(j)
        first._jobs.store.save(j)
    with Pipeline(settings) as second:
        assert second.resume_jobs() == [j.id]
        done = _wait(second, j.id)
        assert done.status == "done" and done.attempts == 2
        assert sorted(f.status for f in done.files) == ["added", "added"]
        assert second.search("c", "otters", limit=1)[0].source == "u/b.txt"
        assert second.resume_jobs() == []
