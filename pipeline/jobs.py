"""Ingest jobs: their state, its persistence, its transitions and their execution.

A job is a batch of files queued for one collection. Its files are spooled to disk
(``<jobs>/<id>/files/``) before the job is queued, and its state is one JSON file
(``<jobs>/<id>.json``) rewritten atomically after every file, so:

- a job interrupted by a restart (or a crash, ``kill -9``) is found again by
  :meth:`JobRunner.resume` and run again from its spooled files: the runner is
  idempotent per file, so files already stored are ``unchanged`` the second time;
- ``GET /v1/jobs/{id}`` answers for jobs a previous process ran.

Every change of ``status`` goes through one of :func:`start`, :func:`complete`,
:func:`fail`, :func:`cancel` or :func:`requeue`, which refuse transitions that make no
sense (a finished job never runs again), so the life of a job reads in one place:

``queued -> running -> done | failed``, ``queued | running -> cancelled``,
``running -> queued`` (interrupted, resumed after a restart).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipeline.runner import FileItem, FileResult, IngestRunner, Progress, file_reader
from rag.errors import LimitExceeded, MmragError, NotFound, one_line

log = logging.getLogger("mmrag.jobs")

JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
FINAL: tuple[str, ...] = ("done", "failed", "cancelled")


class JobStateError(MmragError):
    """A transition that the job's current status does not allow (a bug if it happens)."""


@dataclass
class Job:
    id: str
    collection: str
    status: JobStatus = "queued"
    files: list[FileResult] = field(default_factory=list)
    files_done: int = 0
    chunks: int = 0
    created: float = field(default_factory=time.time)
    finished: float | None = None
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    # Path jobs (the local CLI through a server) read files where they are, relative to
    # this folder, instead of from the spool.
    base_dir: str | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        data = dict(data)
        files = [FileResult(**f) for f in data.pop("files", [])]
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(files=files, **known)


# --- transitions ------------------------------------------------------------------------


def _move(job: Job, to: JobStatus, allowed: tuple[str, ...]) -> None:
    if job.status not in allowed:
        raise JobStateError(f"job {job.id}: cannot go from {job.status!r} to {to!r}")
    job.status = to


def start(job: Job) -> None:
    _move(job, "running", ("queued",))
    job.attempts += 1


def complete(job: Job, files: list[FileResult]) -> None:
    _move(job, "done", ("running",))
    job.files = files
    job.files_done = len(files)
    job.finished = time.time()


def fail(job: Job, reason: str) -> None:
    """The one place a job fails: it keeps the per-file results it has and says why."""
    _move(job, "failed", ("queued", "running"))
    job.error = reason
    job.finished = time.time()


def cancel(job: Job, reason: str) -> None:
    _move(job, "cancelled", ("queued", "running"))
    job.error = reason
    job.finished = time.time()


def requeue(job: Job) -> None:
    """A job a dead process left ``running`` goes back to the queue to run again."""
    _move(job, "queued", ("queued", "running"))
    job.files_done = 0
    job.chunks = 0
    for f in job.files:
        f.status, f.points, f.chunks, f.error = "pending", 0, 0, None


# --- persistence ------------------------------------------------------------------------


class JobStore:
    """Job state as one JSON file per job, written atomically; spooled files beside it."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()

    def spool_dir(self, job_id: str) -> Path:
        return self.root / job_id / "files"

    def new(self, collection: str, names: list[str], metadata: dict[str, Any] | None = None
            ) -> Job:
        job = Job(id=uuid.uuid4().hex, collection=collection,
                  files=[FileResult(source=n) for n in names], metadata=dict(metadata or {}))
        self.spool_dir(job.id).mkdir(parents=True, exist_ok=True)
        return job

    # Uploads being received are spooled under ``incoming/`` (same file system, so a
    # finished one becomes a job's spool by one rename); a process that dies mid-upload
    # leaves a folder there that the next start removes.
    def new_incoming(self) -> Path:
        path = self.root / "incoming" / uuid.uuid4().hex
        path.mkdir(parents=True)
        return path

    def adopt(self, collection: str, names: list[str], spool: Path,
              metadata: dict[str, Any] | None = None) -> Job:
        """A job over files already spooled in ``spool`` (``00000``, ``00001``, ... in
        the order of ``names``), which moves to become the job's spool."""
        job = Job(id=uuid.uuid4().hex, collection=collection,
                  files=[FileResult(source=n) for n in names], metadata=dict(metadata or {}))
        dest = self.spool_dir(job.id)
        dest.parent.mkdir(parents=True, exist_ok=True)
        Path(spool).rename(dest)
        return job

    def purge_incoming(self) -> None:
        shutil.rmtree(self.root / "incoming", ignore_errors=True)

    def save(self, job: Job) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{job.id}.json"
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
        with self._lock:
            tmp.write_text(json.dumps(job.to_json()))
            tmp.replace(path)

    def get(self, job_id: str) -> Job:
        if not job_id.isalnum():
            raise NotFound(f"job {job_id!r} does not exist")
        path = self.root / f"{job_id}.json"
        try:
            return Job.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise NotFound(f"job {job_id!r} does not exist") from None
        except (ValueError, TypeError) as exc:
            raise NotFound(f"job {job_id!r} has unreadable state ({exc})") from None

    def unfinished(self) -> list[Job]:
        """Jobs a previous process queued or was running, oldest first."""
        jobs = []
        for path in sorted(self.root.glob("*.json")) if self.root.is_dir() else []:
            try:
                job = self.get(path.stem)
            except NotFound:
                continue
            if not job.final:
                jobs.append(job)
        return sorted(jobs, key=lambda j: j.created)

    def items(self, job: Job, max_bytes: int) -> list[FileItem]:
        """The job's files: read where they are (path jobs) or from the spool."""
        if job.base_dir is not None:
            base = job.base_dir
            return [(f.source, file_reader(f.source, max_bytes, base)) for f in job.files]
        return self.spooled_items(job, max_bytes)

    def spooled_items(self, job: Job, max_bytes: int | None = None) -> list[FileItem]:
        """The job's files, read back from the spool in the order they were uploaded;
        one over ``max_bytes`` fails by its size, without being read into memory."""
        spool = self.spool_dir(job.id)

        def reader(path: Path, name: str) -> Callable[[], bytes]:
            def read() -> bytes:
                try:
                    size = path.stat().st_size
                    if max_bytes is not None and size > max_bytes:
                        raise LimitExceeded(
                            f"{name}: {size:,} bytes is over the {max_bytes:,} byte limit "
                            "(ingest.max_file_bytes)"
                        )
                    return path.read_bytes()
                except OSError as exc:
                    raise NotFound(f"{name}: the spooled upload is gone ({exc})") from exc

            return read

        return [(f.source, reader(spool / f"{i:05d}", f.source)) for i, f in enumerate(job.files)]

    def drop_spool(self, job: Job) -> None:
        shutil.rmtree(self.root / job.id, ignore_errors=True)


# --- execution --------------------------------------------------------------------------

#: Called with the job after it reaches a final status (metrics, notifications).
JobListener = Callable[[Job], None]


class JobRunner:
    """Runs jobs on one worker thread (the store takes one writer per collection anyway)
    and keeps track of which are live in this process."""

    def __init__(self, store: JobStore, runner: IngestRunner, workers: int = 1) -> None:
        self.store = store
        self.runner = runner
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="mmrag-ingest")
        self._live: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.listeners: list[JobListener] = []

    def submit(self, job: Job) -> Job:
        """Queue a job whose files are already in its spool directory."""
        self.store.save(job)
        with self._lock:
            if self._closed:
                cancel(job, "cancelled: the server is shutting down")
                self.store.save(job)
                return job
            self._live[job.id] = self._executor.submit(self._run, job)
        return job

    def resume(self) -> list[str]:
        """Queue again every job a previous process left unfinished; their ids."""
        self.store.purge_incoming()  # uploads a dead process was still receiving
        resumed = []
        for job in self.store.unfinished():
            with self._lock:
                if job.id in self._live:
                    continue
            requeue(job)
            log.info("resuming ingest job %s (%d files)", job.id, len(job.files))
            self.submit(job)
            resumed.append(job.id)
        return resumed

    def is_live(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._live

    def get(self, job_id: str) -> Job:
        return self.store.get(job_id)

    def _run(self, job: Job) -> None:
        try:
            start(job)
            self.store.save(job)

            def on_progress(p: Progress) -> None:
                job.files_done, job.chunks = p.files_done, p.chunks
                if p.result is not None:
                    job.files[p.index] = p.result
                    self.store.save(job)

            items = self.store.items(job, self.runner.settings.ingest.max_file_bytes)
            report = self.runner.run(
                job.collection, items, metadata=job.metadata,
                progress=on_progress,
            )
            complete(job, report.files)
        except MmragError as exc:
            fail(job, str(exc))
        except Exception as exc:  # a bug must still end the job, or pollers wait forever
            log.exception("ingest job %s crashed", job.id)
            fail(job, f"internal error: {one_line(exc)}")
        finally:
            if job.final:
                self.store.save(job)
                self.store.drop_spool(job)
            with self._lock:
                self._live.pop(job.id, None)
            if job.final:
                for listener in self.listeners:
                    try:
                        listener(job)
                    except Exception:  # a listener must not break the job
                        log.exception("job listener failed")

    def close(self, wait: bool = True) -> None:
        """Finish the running job; queued ones stay queued on disk and resume next start."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=wait, cancel_futures=True)
        with self._lock:
            self._live.clear()
