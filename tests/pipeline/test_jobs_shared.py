"""One jobs folder shared by several processes (``api.jobs_dir``, API replicas): any of
them answers for any job, a job runs in the one process that claimed it, and a job whose
process died is resumed by the next one that starts. Two pipelines in one test stand
for two replicas: claims are ``flock`` locks, held per open file, so two runners in one
process exclude each other exactly as two processes do (test_jobs_replicas.py runs two
real servers)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pipeline import Pipeline
from pipeline.jobstore import JobStore
from tests.conftest import offline
from tests.pipeline.test_jobs_on_disk import wait_idle


def replica(tmp_path: Path, name: str) -> Pipeline:
    return Pipeline(offline(tmp_path / name, api={"jobs_dir": str(tmp_path / "shared")}))


def spooled(pipe: Pipeline, files: dict[str, bytes]) -> Path:
    spool = pipe.new_spool()
    for i, data in enumerate(files.values()):
        (spool / f"{i:05d}").write_bytes(data)
    return spool


def test_a_job_run_by_one_replica_is_answered_by_another(tmp_path: Path) -> None:
    with replica(tmp_path, "a") as a, replica(tmp_path, "b") as b:
        files = {"upload/tides.txt": b"Spring tides follow the full moon.",
                 "upload/knots.txt": b"A bowline does not slip."}
        job = a.submit_spooled("docs", list(files), spooled(a, files))
        wait_idle(a, [job.id])
        seen = b.job(job.id)
        assert not b.job_is_live(job.id)
        assert seen.status == "done"
        assert [(f.source, f.status) for f in seen.files] == [
            ("upload/tides.txt", "added"), ("upload/knots.txt", "added")]
        assert seen.to_json() == a.job(job.id).to_json()
        assert (tmp_path / "shared" / f"{job.id}.json").exists()
        assert not (tmp_path / "a" / "jobs").exists()  # nothing of it in the data dir


def test_a_replica_starting_leaves_a_live_replicas_job_alone(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "shared")
    with replica(tmp_path, "a") as a:
        job = store.new("docs", ["upload/a.txt"])
        (store.spool_dir(job.id) / "00000").write_bytes(b"Lighthouses warn ships.")
        store.save(job)  # queued, on disk
        held = store.claim(job.id)  # ... and claimed by a replica that is alive
        assert held is not None
        assert a.resume_jobs() == []
        assert store.load(job.id).status == "queued"
        held.release()  # that replica dies: the kernel drops its lock
        assert a.resume_jobs() == [job.id]
        wait_idle(a, [job.id])
        assert a.job(job.id).status == "done"
    assert not (tmp_path / "shared" / f"{job.id}.lock").exists()


def test_a_claimed_job_is_run_once(tmp_path: Path) -> None:
    with replica(tmp_path, "a") as a, replica(tmp_path, "b") as b:
        store = JobStore(tmp_path / "shared")
        job = store.new("docs", ["upload/a.txt"])
        (store.spool_dir(job.id) / "00000").write_bytes(b"Buoys mark channels.")
        store.save(job)
        assert a.resume_jobs() == [job.id]
        assert b.resume_jobs() == []  # a holds it, queued or running
        wait_idle(a, [job.id])
        assert b.job(job.id).status == "done"
        assert b.resume_jobs() == []  # final: nothing to resume
        assert "docs" not in b.collection_names()  # b's store never saw it: a ran it


def test_uploads_in_flight_on_another_replica_survive_a_start(tmp_path: Path) -> None:
    with replica(tmp_path, "a") as a:
        receiving = spooled(a, {"x": b"half an upload"})
        dead = spooled(a, {"y": b"a dead replica's upload"})
        old = time.time() - 2 * 3600
        for path in (dead, dead / "00000"):
            os.utime(path, (old, old))
        with replica(tmp_path, "b") as b:
            b.resume_jobs()
        assert receiving.exists() and not dead.exists()
