"""The jobs folder is data, never commands: planted and damaged files, path jobs after a
restart, the per-file log (torn lines, O(n) writes) and retention.

Everything runs on real files and a real offline :class:`~pipeline.Pipeline`; an
"attacker" here is whoever can write into ``<data_dir>/jobs/`` (a bug, a restored backup,
another program) and the checks are on what a starting server then reads or removes.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from pipeline import Pipeline
from pipeline.jobs import RESTARTED, JobRunner
from pipeline.jobstate import BadJobState, Job, job_from_json, start
from pipeline.jobstore import JobStore
from pipeline.runner import FileResult
from rag.errors import NotFound
from tests.conftest import offline

SECRET = "The vault combination is 8812, kept in the north office."


def hexid() -> str:
    return uuid.uuid4().hex


def job_json(job_id: str, **fields: Any) -> str:
    base: dict[str, Any] = {
        "id": job_id, "collection": "c", "status": "queued", "files": [], "files_done": 0,
        "chunks": 0, "created": time.time(), "finished": None, "error": None,
        "metadata": {}, "attempts": 0, "base_dir": None}
    return json.dumps({**base, **fields})


def outside_folder(root: Path) -> Path:
    folder = root / "outside" / "victim"
    folder.mkdir(parents=True)
    (folder / "secret.txt").write_text(SECRET)
    return folder


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def documents(pipe: Pipeline) -> list[str]:
    return [d["source"] for d in pipe.documents("c")] if pipe.has_collection("c") else []


def wait_idle(pipe: Pipeline, ids: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while any(pipe.job_is_live(j) for j in ids):
        assert time.monotonic() < deadline, "jobs still running"
        time.sleep(0.05)


# --- planted files ---------------------------------------------------------------------------


def test_a_planted_path_job_reads_and_removes_nothing(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """The attack of issue 17: an id that is an absolute path outside the data dir and a
    base_dir of real files. The starting server ingested the files and rmtree'd the
    folder, on every start. Now: ignored, said once, and the folder is untouched."""
    victim = outside_folder(tmp_path)
    before = tree(tmp_path / "outside")
    data = tmp_path / "data"
    jobs = data / "jobs"
    jobs.mkdir(parents=True)
    planted = job_json(str(victim), base_dir=str(victim), files=[{"source": "secret.txt"}])
    (jobs / "evil.json").write_text(planted)
    # The same under a valid file name: the id inside still is not the name.
    (jobs / f"{hexid()}.json").write_text(planted)
    with caplog.at_level(logging.WARNING, logger="mmrag.jobs"):
        for _ in range(2):  # it used to repeat on every start
            with Pipeline(offline(data)) as pipe:
                assert pipe.resume_jobs() == []
                assert documents(pipe) == []
    assert tree(tmp_path / "outside") == before  # nothing removed, nothing written there
    assert (jobs / "evil.json").read_text() == planted  # left alone, not "cleaned up"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("evil.json" in w for w in warnings) == 2  # once per start


def test_a_job_whose_id_is_not_its_file_name_is_not_a_job(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    real = store.new("c", ["a.txt"])
    store.save(real)
    other = hexid()
    (tmp_path / f"{other}.json").write_text(job_json(real.id))  # claims to be `real`
    with pytest.raises(NotFound, match="unreadable"):
        store.get(other)
    assert [j.id for j in store.unfinished()] == [real.id]
    for bad in ("../etc/passwd", "/tmp/x", real.id.upper(), real.id + "0", ""):
        with pytest.raises(NotFound, match="does not exist"):
            store.get(bad)


@pytest.mark.parametrize("damage", [
    {"created": "yesterday"},                 # sorted() with floats crashed the start
    {"files": "secret.txt"},
    {"files": [{"source": "a.txt", "status": "stolen"}]},
    {"files": [{"source": 7}]},
    {"attempts": True},
    {"metadata": ["x"]},
    {"status": "paused"},
    {"base_dir": 42},
    {"collection": None},
])
def test_wrong_types_are_refused(damage: dict[str, Any]) -> None:
    with pytest.raises(BadJobState):
        job_from_json(json.loads(job_json(hexid(), **damage)))


def test_garbage_and_links_beside_a_genuine_job(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """A start with every kind of stranger in the jobs folder resumes the one genuine
    upload, reads nothing through a link and removes nothing that is not its own."""
    victim = outside_folder(tmp_path)
    (victim / "files").mkdir()
    (victim / "files" / "00000").write_text(SECRET)
    elsewhere = tmp_path / "outside" / "job.json"
    elsewhere_id = hexid()
    elsewhere.write_text(job_json(elsewhere_id, files=[{"source": "upload/x.txt"}]))
    before = tree(tmp_path / "outside")

    data = tmp_path / "data"
    with Pipeline(offline(data)) as first:
        genuine, spool = first.new_job("c", ["upload/heron.txt"])
        (spool / "00000").write_text("Herons nest near the pier in spring.")
        first._jobs.store.save(genuine)  # queued on disk, as a killed server leaves it
    jobs = data / "jobs"
    typo = hexid()
    (jobs / f"{typo}.json").write_text(job_json(typo, created="yesterday"))
    (jobs / f"{hexid()}.json").write_text("{not json")
    (jobs / f"{hexid()}.json").write_bytes(b"\xff\xfe")
    (jobs / "notes.txt").write_text("hello")
    (jobs / "some folder").mkdir()
    os.mkfifo(jobs / f"{hexid()}.json")  # must not hang the start
    (jobs / f"{elsewhere_id}.json").symlink_to(elsewhere)  # a job file that is a link
    linked = hexid()  # a job whose spool folder is a link to a folder outside
    (jobs / f"{linked}.json").write_text(job_json(linked, files=[{"source": "upload/y"}]))
    (jobs / linked).symlink_to(victim)
    (jobs / "incoming").mkdir()
    (jobs / "incoming" / "partial").write_text("half an upload")

    with caplog.at_level(logging.WARNING, logger="mmrag.jobs"), Pipeline(offline(data)) as pipe:
        resumed = pipe.resume_jobs()
        assert genuine.id in resumed and elsewhere_id not in resumed
        wait_idle(pipe, resumed)
        assert documents(pipe) == ["upload/heron.txt"]
        assert pipe.job(genuine.id).status == "done"
        linked_job = pipe.job(linked)  # ran; its one file could not be read through the link
        assert linked_job.status == "done" and linked_job.files[0].status == "failed"
        assert "not a plain file" in (linked_job.files[0].error or "")
        with pytest.raises(NotFound):
            pipe.job(elsewhere_id)
    assert tree(tmp_path / "outside") == before
    assert (jobs / linked).is_symlink()  # refused, not followed, not removed
    assert not (jobs / "incoming" / "partial").exists()
    assert (jobs / "notes.txt").exists() and (jobs / "some folder").is_dir()
    logged = " ".join(r.getMessage() for r in caplog.records)
    for name in ("notes.txt", "some folder", f"{elsewhere_id}.json", linked, typo):
        assert name in logged


def test_a_spool_file_linked_outside_is_never_read(tmp_path: Path) -> None:
    victim = outside_folder(tmp_path)
    data = tmp_path / "data"
    with Pipeline(offline(data)) as first:
        job, spool = first.new_job("c", ["upload/leak.txt", "upload/ok.txt"])
        (spool / "00000").symlink_to(victim / "secret.txt")
        (spool / "01").write_text("unused")
        (spool / "00001").write_text("Otters crack shells on stones.")
        first._jobs.store.save(job)
    with Pipeline(offline(data)) as pipe:
        assert pipe.resume_jobs() == [job.id]
        wait_idle(pipe, [job.id])
        done = pipe.job(job.id)
        assert [f.status for f in done.files] == ["failed", "added"]
        assert documents(pipe) == ["upload/ok.txt"]
    assert (victim / "secret.txt").read_text() == SECRET


def test_drop_spool_refuses_links_and_bad_ids(tmp_path: Path) -> None:
    victim = outside_folder(tmp_path)
    store = JobStore(tmp_path / "jobs")
    store.root.mkdir()
    job_id = hexid()
    (store.root / job_id).symlink_to(victim)
    store.drop_spool(Job(id=job_id, collection="c"))
    store.drop_spool(Job(id=str(victim), collection="c"))
    store.drop_spool(Job(id="..", collection="c"))
    assert (victim / "secret.txt").read_text() == SECRET
    assert (store.root / job_id).is_symlink()


# --- path jobs after a restart -----------------------------------------------------------------


def test_a_path_job_left_unfinished_fails_after_a_restart(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("Kestrels hover over the fields at dawn.")
    data = tmp_path / "data"
    with Pipeline(offline(data)) as first:
        store = first._jobs.store
        job = store.new("c", ["note.txt"])
        job.base_dir = str(docs)
        start(job)  # what a server killed mid-job leaves: running, with a base_dir
        store.save(job)
    with Pipeline(offline(data)) as second:
        assert second.resume_jobs() == []
        failed = second.job(job.id)
        assert failed.status == "failed" and failed.error == RESTARTED
        assert "mmrag ingest" in RESTARTED
        assert documents(second) == []  # the folder was not read
        assert second.resume_jobs() == []
    assert (docs / "note.txt").exists()


# --- the per-file log -----------------------------------------------------------------------


def test_log_replay_skips_a_torn_last_line_and_earlier_attempts(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    job = store.new("c", ["a.txt", "b.txt", "c.txt"])
    start(job)
    store.save(job)
    log = store.open_log(job)
    log.append(0, FileResult("a.txt", "added", 4, 5, "d0"), 1, 5)
    log.append(2, FileResult("c.txt", "failed", error="c.txt: the file is empty"), 2, 5)
    log.close()
    with (tmp_path / f"{job.id}.log").open("ab") as f:
        f.write(json.dumps({"a": 1, "i": 1, "d": 3, "c": 9,
                            "f": {"source": "b.txt", "status": "added"}}).encode()[:40])
    seen = store.get(job.id)
    assert [f.status for f in seen.files] == ["added", "pending", "failed"]
    assert (seen.files_done, seen.chunks) == (2, 5)
    assert seen.files[0] == FileResult("a.txt", "added", 4, 5, "d0")
    # Lines that do not fit this job are skipped, not trusted.
    with (tmp_path / f"{job.id}.log").open("ab") as f:
        f.write(b"\n" + b"\n".join(json.dumps(x).encode() for x in [
            {"a": 0, "i": 1, "d": 3, "c": 9, "f": {"source": "b.txt", "status": "added"}},
            {"a": 1, "i": 7, "d": 3, "c": 9, "f": {"source": "b.txt", "status": "added"}},
            {"a": 1, "i": 1, "d": 3, "c": 9, "f": {"source": "/etc/passwd",
                                                  "status": "added"}},
        ]) + b"\n")
    assert [f.status for f in store.get(job.id).files] == ["added", "pending", "failed"]
    # The next attempt's header makes the old lines stale even before its log is new.
    job.status = "queued"
    start(job)
    store.save(job)
    assert [f.status for f in store.get(job.id).files] == ["pending"] * 3
    store.open_log(job).close()
    assert (tmp_path / f"{job.id}.log").read_bytes() == b""


def wchar() -> int:
    """Bytes this process has passed to write() so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc")
def test_state_writes_grow_linearly_with_the_files(tmp_path: Path) -> None:
    """A job's state used to be rewritten whole after each file: O(n^2) bytes (a
    2,000-file job wrote 605 MB in 56 s). Now each file costs a bounded number of bytes,
    the same at 200 and at 2,000 files."""
    per_file = {}
    with Pipeline(offline(tmp_path / "data", ingest={"workers": 1})) as pipe:
        for n in (200, 2000):
            job, spool = pipe.new_job("c", [f"u/{n}-{i}.txt" for i in range(n)])
            for i in range(n):
                (spool / f"{i:05d}").write_bytes(b"")  # fails fast: no model work
            written = wchar()
            pipe.submit_job(job)
            deadline = time.monotonic() + 120
            while not (done := pipe.job(job.id)).final:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            per_file[n] = (wchar() - written) / n
            assert done.files_done == n and {f.status for f in done.files} == {"failed"}
            assert not (tmp_path / "data" / "jobs" / f"{job.id}.log").exists()  # compacted
    assert per_file[2000] < 2_000, per_file
    assert per_file[2000] < 1.5 * per_file[200], per_file


# --- retention --------------------------------------------------------------------------------


def finished_job(store: JobStore, ago_s: float, status: str = "done") -> Job:
    job = Job(id=hexid(), collection="c", status=status,  # type: ignore[arg-type]
              files=[FileResult("a.txt", "added", 1, 1)], finished=time.time() - ago_s)
    assert job.finished is not None
    store.save(job)
    os.utime(store.root / f"{job.id}.json", (job.finished, job.finished))
    return job


def test_finished_jobs_are_pruned_after_the_retention_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    day = 86400.0
    with Pipeline(offline(data, api={"job_retention": 7 * day})) as first:
        store = first._jobs.store
        old = [finished_job(store, 8 * day, s) for s in ("done", "failed", "cancelled")]
        restored = finished_job(store, 8 * day)  # copied back today: its time says nothing
        os.utime(store.root / f"{restored.id}.json")
        old.append(restored)
        (store.root / f"{old[0].id}.log").write_text("")  # leftovers go with their job
        (store.root / old[0].id / "files").mkdir(parents=True)
        (store.root / old[0].id / "files" / "00000").write_text("x")
        recent = finished_job(store, 6 * day)
        waiting = store.new("c", ["b.txt"])
        waiting.created -= 30 * day
        store.save(waiting)
        os.utime(store.root / f"{waiting.id}.json", (waiting.created, waiting.created))
        orphan = store.new("c", ["z.txt"]).id  # a spool no state names (crash in between)
        for p in (store.root / orphan, store.root / orphan / "files"):
            os.utime(p, (time.time() - 8 * day,) * 2)
        (store.root / f"{recent.id}.json.123.tmp").write_text("{")
    with Pipeline(offline(data, api={"job_retention": 7 * day})) as pipe:
        pipe.resume_jobs()
        wait_idle(pipe, [waiting.id])
        for job in old:
            with pytest.raises(NotFound):
                pipe.job(job.id)
        assert pipe.job(recent.id).status == "done"
        assert pipe.job(waiting.id).final  # never pruned while unfinished: it ran
    left = sorted(p.name for p in (data / "jobs").iterdir())
    assert left == sorted([f"{recent.id}.json", f"{waiting.id}.json"])


def test_finishing_a_job_prunes_expired_ones_at_most_once_a_minute(tmp_path: Path) -> None:
    with Pipeline(offline(tmp_path / "data", api={"job_retention": 0.2})) as pipe:
        runner: JobRunner = pipe._jobs
        assert runner.retention_s == 0.2  # from api.job_retention
        earlier = finished_job(runner.store, 60)

        def run_one(text: str) -> str:
            job, spool = pipe.new_job("c", ["u/a.txt"])
            (spool / "00000").write_text(text)
            pipe.submit_job(job)
            wait_idle(pipe, [job.id])
            return job.id

        first = run_one("Anchors hold boats.")
        with pytest.raises(NotFound):
            pipe.job(earlier.id)  # the first finish prunes
        assert pipe.job(first).status == "done"
        time.sleep(0.3)
        run_one("Sails catch wind.")
        assert pipe.job(first).status == "done"  # the next pass is a minute away
        runner.prune_every_s = 0
        run_one("Ropes fray in salt.")
        with pytest.raises(NotFound):
            pipe.job(first)
