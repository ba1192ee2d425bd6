"""A job's state: its fields, the transitions between statuses, and strict parsing.

Every change of ``status`` goes through one of :func:`start`, :func:`complete`,
:func:`fail`, :func:`cancel` or :func:`requeue`, which refuse transitions that make no
sense (a finished job never runs again), so the life of a job reads in one place:

``queued -> running -> done | failed``, ``queued | running -> cancelled``,
``running -> queued`` (interrupted, resumed after a restart).

State read back from disk is data, not commands: :func:`job_from_json` accepts only the
exact shape this module writes (ids as :func:`new_id` makes them, every field its type)
and raises :class:`BadJobState` for anything else, so a planted or damaged file cannot
name a path, crash a sort, or pass for a job.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from pipeline.report import FileResult, FileStatus
from rag.errors import MmragError

JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
FINAL: tuple[str, ...] = ("done", "failed", "cancelled")
STATUSES: tuple[str, ...] = get_args(JobStatus)
FILE_STATUSES: tuple[str, ...] = get_args(FileStatus)

#: What ``uuid.uuid4().hex`` makes: the only job ids there are, on disk or from clients.
JOB_ID = re.compile(r"[0-9a-f]{32}")


class JobStateError(MmragError):
    """A transition that the job's current status does not allow (a bug if it happens)."""


class BadJobState(ValueError):
    """Stored job state that is not what this module writes (planted, damaged, foreign)."""


def is_job_id(value: object) -> bool:
    return isinstance(value, str) and JOB_ID.fullmatch(value) is not None


def new_id() -> str:
    return uuid.uuid4().hex


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
    # this folder, instead of from the spool. Never resumed after a restart.
    base_dir: str | None = None
    # Rewrite every file even when it is stored and current (``mmrag ingest --rebuild``).
    rebuild: bool = False

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> Job:
        return job_from_json(data)


# --- strict parsing ------------------------------------------------------------------------

_NUMBER = (int, float)
_JOB_FIELDS: dict[str, tuple[type, ...]] = {
    "files_done": (int,), "chunks": (int,), "created": _NUMBER,
    "finished": (*_NUMBER, type(None)), "error": (str, type(None)), "metadata": (dict,),
    "attempts": (int,), "base_dir": (str, type(None)), "rebuild": (bool,),
}
_FILE_FIELDS: dict[str, tuple[type, ...]] = {
    "points": (int,), "chunks": (int,), "doc_id": (str,), "error": (str, type(None)),
    "reason": (str, type(None)),
}


def _typed(name: str, value: object, types: tuple[type, ...]) -> None:
    # bool is an int to isinstance: a bool passes only where bool is asked for.
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        raise BadJobState(f"{name} is {type(value).__name__}, expected "
                          + " or ".join(t.__name__ for t in types))


_FILE_KEYS = {"source", "status", "points", "chunks", "doc_id", "error", "reason"}


def file_result_from_json(data: object) -> FileResult:
    # The shape this module writes, checked in one go: a 20k-file job is 20k of these.
    if type(data) is dict and data.keys() == _FILE_KEYS:
        source, status, points = data["source"], data["status"], data["points"]
        chunks, doc_id, error = data["chunks"], data["doc_id"], data["error"]
        reason = data["reason"]
        if (type(source) is str and status in FILE_STATUSES and type(points) is int
                and type(chunks) is int and type(doc_id) is str
                and (error is None or type(error) is str)
                and (reason is None or type(reason) is str)):
            return FileResult(source, status, points, chunks, doc_id, error, reason)
    if not isinstance(data, dict):
        raise BadJobState("a file entry is not an object")
    source, status = data.get("source"), data.get("status", "pending")
    _typed("files[].source", source, (str,))
    if status not in FILE_STATUSES:
        raise BadJobState(f"files[].status {status!r} is not one of {FILE_STATUSES}")
    kwargs: dict[str, Any] = {}
    for key, types in _FILE_FIELDS.items():
        if key in data:
            _typed(f"files[].{key}", data[key], types)
            kwargs[key] = data[key]
    return FileResult(source=source, status=status, **kwargs)  # type: ignore[arg-type]


def job_from_json(data: object) -> Job:
    """A :class:`Job` from what :meth:`Job.to_json` wrote, or :class:`BadJobState`."""
    if not isinstance(data, dict):
        raise BadJobState("not a JSON object")
    job_id, collection, status = data.get("id"), data.get("collection"), data.get("status")
    if not is_job_id(job_id):
        raise BadJobState(f"id {job_id!r} is not a job id (32 lowercase hex digits)")
    _typed("collection", collection, (str,))
    if status not in STATUSES:
        raise BadJobState(f"status {status!r} is not one of {STATUSES}")
    files = data.get("files")
    if not isinstance(files, list):
        raise BadJobState("files is not a list")
    kwargs: dict[str, Any] = {}
    for key, types in _JOB_FIELDS.items():
        if key in data:
            _typed(key, data[key], types)
            kwargs[key] = data[key]
    return Job(id=job_id, collection=collection, status=status,  # type: ignore[arg-type]
               files=[file_result_from_json(f) for f in files], **kwargs)


# --- transitions ---------------------------------------------------------------------------


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
        f.status, f.points, f.chunks, f.error, f.reason = "pending", 0, 0, None, None
