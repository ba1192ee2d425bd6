"""Upload limits shared by HTTP and MCP: the in-flight budget, the spool bound (bytes
of accepted uploads whose jobs have not ended) and the per-request checks; the spool
bound against a real pipeline's jobs, including jobs resumed after a restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline import Job, Pipeline
from pipeline.jobs import start
from policy.uploads import SPOOL_RETRY_AFTER_S, SpoolBudget, UploadBudget, Uploads
from rag.errors import BadInput, Busy, LimitExceeded
from rag.settings import ApiSettings
from tests.conftest import offline


def test_budget_429_when_busy_413_when_it_never_fits() -> None:
    budget = UploadBudget(1000)
    first = budget.lease(800)
    with pytest.raises(Busy, match="Retry"):
        budget.lease(300)
    with pytest.raises(LimitExceeded, match="split it"):
        budget.lease(1001)
    first.release()
    second = budget.lease(300)  # fits once the first is done
    assert budget.in_flight == 300
    second.release()
    streamed = budget.lease()
    streamed.on_chunk(900)
    with pytest.raises(LimitExceeded):
        streamed.on_chunk(200)
    streamed.release()
    assert budget.in_flight == 0


def test_spool_bound_busy_until_a_job_ends() -> None:
    spool = SpoolBudget(1000)
    spool.bind("job-a", spool.reserve(700))
    with pytest.raises(Busy, match=r"api.max_spool_bytes\). Retry in 30 seconds") as busy:
        spool.reserve(400)
    assert busy.value.retry_after_s == SPOOL_RETRY_AFTER_S
    with pytest.raises(Busy):
        spool.check(400)  # the up-front check refuses the same, reserving nothing
    assert spool.used == 700
    with pytest.raises(LimitExceeded, match="split it"):
        spool.check(1001)  # could never fit: retrying cannot help
    spool.job_ended("job-a")
    assert spool.used == 0
    spool.bind("job-b", spool.reserve(400))
    spool.job_ended("job-unknown")  # a job this budget never held gives nothing back
    assert spool.used == 400


def test_a_job_that_ends_before_it_is_bound_gives_its_bytes_back() -> None:
    """A tiny upload on an idle server can finish before its submitter records it."""
    spool = SpoolBudget(1000)
    n = spool.reserve(300)
    spool.job_ended("fast")
    spool.bind("fast", n)
    assert spool.used == 0 and spool.bytes_of("fast") is None


def test_per_request_checks_and_base64() -> None:
    uploads = Uploads(ApiSettings(max_upload_bytes=10, max_files_per_request=2))
    with pytest.raises(LimitExceeded, match="api.max_files_per_request"):
        uploads.check_files([("a", 1), ("b", 1), ("c", 1)])
    with pytest.raises(LimitExceeded, match="api.max_upload_bytes"):
        uploads.check_files([("a", 11)])
    assert uploads.decode_base64("a.txt", "aGVsbG8=") == b"hello"
    assert uploads.decode_base64("a.txt", "data:text/plain;base64,aGVsbG8=") == b"hello"
    with pytest.raises(BadInput, match="a.txt: data is not valid base64"):
        uploads.decode_base64("a.txt", "not base64!")
    with pytest.raises(LimitExceeded, match="api.max_upload_bytes"):
        uploads.decode_base64("big.bin", "QUFBQUFBQUFBQUFBQUFBQQ==")  # 16 bytes


def _wait(pipe: Pipeline, job_id: str, timeout: float = 120) -> Job:
    deadline = time.monotonic() + timeout
    while not (job := pipe.job(job_id)).final:
        assert time.monotonic() < deadline, f"job still {job.status}"
        time.sleep(0.05)
    return job


def _eventually(check: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.02)


@pytest.mark.integration
def test_submitted_uploads_hold_spool_bytes_until_their_job_ends(tmp_path: Path) -> None:
    settings = offline(tmp_path, api={"max_spool_bytes": 100})
    uploads = Uploads(settings.api)
    with Pipeline(settings) as pipe:
        uploads.attach(pipe)
        text = b"Lighthouse keepers log the weather every six hours."  # 52 bytes
        spool = pipe.new_spool()
        (spool / "00000").write_bytes(text)
        uploads.spool.bind("another-upload", uploads.spool.reserve(60))
        with pytest.raises(Busy, match="api.max_spool_bytes"):
            uploads.submit(pipe, "c", ["upload/a.txt"], spool, [len(text)])
        assert uploads.spool.used == 60 and not pipe.has_collection("c")  # nothing queued
        uploads.spool.job_ended("another-upload")

        job = uploads.submit(pipe, "c", ["upload/a.txt"], spool, [len(text)])
        assert uploads.spool.used in (0, len(text))  # 0 if it already ended
        assert _wait(pipe, job.id).status == "done"
        _eventually(lambda: uploads.spool.used == 0)


@pytest.mark.integration
def test_spools_of_resumed_jobs_count_until_they_end(tmp_path: Path) -> None:
    settings = offline(tmp_path, api={"max_spool_bytes": 1000})
    files = {"upload/a.txt": b"Kestrels hover over fields.",
             "upload/b.txt": b"Otters crack shells on stones."}
    with Pipeline(settings) as first:
        job, spool = first.new_job("c", list(files))
        for i, data in enumerate(files.values()):
            (spool / f"{i:05d}").write_bytes(data)
        start(job)  # what a process killed mid-job leaves: "running" on disk, files spooled
        first._jobs.store.save(job)
        assert first.job_spool_bytes(job.id) == sum(map(len, files.values()))
    uploads = Uploads(settings.api)
    with Pipeline(settings) as second:
        uploads.attach(second)
        # Counted before the job can run here, so the count is seen; the server counts
        # right after resuming, where a job that already ended gives its bytes back.
        uploads.count_resumed(second, [job.id])
        assert uploads.spool.used == sum(map(len, files.values()))
        with pytest.raises(Busy):
            uploads.spool.reserve(1000 - 10)
        assert second.resume_jobs() == [job.id]
        assert _wait(second, job.id).status == "done"
        _eventually(lambda: uploads.spool.used == 0)
        assert second.job_spool_bytes(job.id) == 0
