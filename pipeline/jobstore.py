"""Job state on disk: a header per job, a log of per-file results, spooled uploads.

Layout of the jobs folder (``<data_dir>/jobs/``)::

    <id>.json         the job (Job.to_json), replaced atomically at each status change
    <id>.log          one JSON line per finished file while the job runs
    <id>/files/00000  the job's spooled uploads, in upload order
    incoming/<x>/     uploads still being received (removed at start)

Why a log: rewriting the whole job after every file made a job's state writes grow with
the square of its files (20k files: gigabytes). The header is written a fixed number of
times (queued, running, final); each file appends one line; the final header holds every
result and the log is removed, so a job costs O(files) bytes. Reading a running job is
its header plus a replay of its log; a torn last line (``kill -9`` mid-write) is ignored,
and so are lines of an earlier attempt. The log is not fsynced per line: a killed
process loses nothing (the kernel has the bytes), a power cut may lose the last lines,
and those files are simply run again (the runner is idempotent per file).

The folder is data, never commands. Only ``<32 hex>.json`` files whose ``id`` is their
file name and whose fields have the right types are jobs; ids are checked before any path
is built from them; files are opened without following symlinks and only when regular;
removal is only of ``<root>/<valid id>`` folders that are real folders (never a link).
Anything else there is logged once per start and left alone. Nothing outside the jobs
folder is read or removed because of what is inside it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ingest.blob import FileBlob
from pipeline.jobstate import (
    BadJobState,
    Job,
    file_result_from_json,
    is_job_id,
    job_from_json,
    new_id,
)
from pipeline.report import FileResult
from pipeline.runner import FileItem, file_reader
from rag.errors import NotFound

log = logging.getLogger("mmrag.jobs")

INCOMING = "incoming"
_TMP = re.compile(r"([0-9a-f]{32})\.json\.\d+\.tmp")
_JSON = re.compile(r"([0-9a-f]{32})\.json")
_LOG = re.compile(r"([0-9a-f]{32})\.log")
_CLAIM = re.compile(r"([0-9a-f]{32})\.lock")


class Claim:
    """A process's hold on one job (an ``flock`` on ``<id>.lock``): while it is held no
    other process sharing the jobs folder runs or resumes the job, and it goes when the
    process does, ``kill -9`` included, so a dead replica's jobs become free to resume."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    def release(self, final: bool = False) -> None:
        """Let go; ``final``: the job has ended, so its lock file goes too (removed while
        held: whoever opens the name later locks a new file, finds the job final and
        lets go in turn)."""
        if self._fd is not None:
            if final:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)  # closing the file releases the lock
            self._fd = None


class SpoolReader:
    """One spooled upload (picklable: a Ray worker that sees the shared jobs folder
    reads the file there instead of getting its bytes from the driver). It returns a
    :class:`~ingest.blob.FileBlob` that opens the file below the jobs folder without
    following a link at any step, each time it is read."""

    def __init__(self, root: Path, job_id: str, index: int, name: str) -> None:
        self.root, self.job_id, self.index, self.name = root, job_id, index, name

    def open_fd(self) -> int:
        try:
            return _open_below(self.root, self.job_id, "files", f"{self.index:05d}")
        except OSError as exc:
            raise NotFound(
                f"{self.name}: the spooled upload is gone or not a plain file "
                f"({exc.strerror or exc})") from exc

    def __call__(self) -> FileBlob:
        return FileBlob(self.name, self.open_fd)


# --- files opened without following links --------------------------------------------------


def _open_below(root: Path, *parts: str) -> int:
    """A read-only fd of ``root/parts...`` that refuses a symlink at every step below
    ``root`` (``openat`` with ``O_NOFOLLOW``, so no check-then-use race) and never
    blocks on a FIFO. Raises OSError (``ELOOP`` for a link)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)


def _read_regular(root: Path, *parts: str) -> bytes:
    """The bytes of a regular file below ``root`` reached without links; OSError else."""
    fd = _open_below(root, *parts)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return f.read()


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


# --- the per-file log ----------------------------------------------------------------------


@dataclass
class JobLog:
    """Appends a running job's per-file results to ``<id>.log``, one line each."""

    fd: int
    attempt: int
    lines: int = 0

    def append(self, index: int, result: FileResult, files_done: int, chunks: int) -> None:
        line = json.dumps({"a": self.attempt, "i": index, "d": files_done, "c": chunks,
                           "f": asdict(result)}, separators=(",", ":")) + "\n"
        os.write(self.fd, line.encode())  # O_APPEND: one write, one line
        self.lines += 1

    def close(self) -> None:
        os.close(self.fd)


def _entries(lines: list[bytes]) -> list[object]:
    """The JSON values of complete log lines: all at once (one parse, the usual case),
    or line by line around the ones that do not parse."""
    try:
        return list(json.loads(b"[" + b",".join(lines) + b"]"))
    except ValueError:
        entries: list[object] = []
        for raw in lines:
            with contextlib.suppress(ValueError):
                entries.append(json.loads(raw))
        return entries


def replay(job: Job, data: bytes) -> int:
    """Apply the log lines of ``job``'s current attempt to it; how many were applied.
    A last line without its newline was torn by a kill and is skipped, as is any line
    that does not fit (another attempt, an index out of range, another file's name)."""
    lines = [raw for raw in data.split(b"\n")[:-1] if raw.strip()]  # after the last
    applied = 0                                                    # newline: torn
    for entry in _entries(lines):
        if not isinstance(entry, dict) or entry.get("a") != job.attempts:
            continue
        index, done, chunks = entry.get("i"), entry.get("d"), entry.get("c")
        if not (type(index) is int and type(done) is int and type(chunks) is int):
            continue
        try:
            result = file_result_from_json(entry.get("f"))
        except BadJobState:
            continue
        if 0 <= index < len(job.files) and job.files[index].source == result.source:
            job.files[index] = result
            job.files_done, job.chunks = done, chunks
            applied += 1
    return applied


# --- the store -----------------------------------------------------------------------------


@dataclass
class Scan:
    """What is in the jobs folder: job headers, and everything that is not ours."""

    jobs: dict[str, os.stat_result] = field(default_factory=dict)
    spools: set[str] = field(default_factory=set)
    logs: set[str] = field(default_factory=set)
    leftovers: list[str] = field(default_factory=list)  # our own temp files
    foreign: dict[str, str] = field(default_factory=dict)  # name -> why it is ignored
    claims: set[str] = field(default_factory=set)


class JobStore:
    """Job state as files in one folder, read as data (see the module's docstring)."""

    #: Shared folder: a temp file younger than this may be another process's save.
    tmp_grace_s = 60.0

    def __init__(self, root: Path, shared: bool = False) -> None:
        self.root = Path(root)
        #: Other processes (API replicas) use this folder too (``api.jobs_dir``).
        self.shared = shared
        self._lock = threading.Lock()
        self._reported: set[str] = set()

    # --- paths, only ever from valid ids ---------------------------------------------------

    def _check(self, job_id: str) -> str:
        if not is_job_id(job_id):
            raise NotFound(f"job {job_id!r} does not exist (job ids are 32 hex digits)")
        return job_id

    def spool_dir(self, job_id: str) -> Path:
        return self.root / self._check(job_id) / "files"

    def _header(self, job_id: str) -> Path:
        return self.root / f"{self._check(job_id)}.json"

    def _log(self, job_id: str) -> Path:
        return self.root / f"{self._check(job_id)}.log"

    def _claim_path(self, job_id: str) -> Path:
        return self.root / f"{self._check(job_id)}.lock"

    # --- claims: which process runs a job (several API replicas, one jobs folder) ------

    def claim(self, job_id: str) -> Claim | None:
        """Hold ``job_id`` for this process, or None when another process holds it."""
        path = self._claim_path(job_id)
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return Claim(fd, path)

    # --- new jobs ------------------------------------------------------------------------

    def new(self, collection: str, names: list[str], metadata: dict[str, Any] | None = None
            ) -> Job:
        job = Job(id=new_id(), collection=collection,
                  files=[FileResult(source=n) for n in names], metadata=dict(metadata or {}))
        self.spool_dir(job.id).mkdir(parents=True, exist_ok=True)
        return job

    # Uploads being received are spooled under ``incoming/`` (same file system, so a
    # finished one becomes a job's spool by one rename); a process that dies mid-upload
    # leaves a folder there that the next start removes.
    def new_incoming(self) -> Path:
        incoming = self.root / INCOMING
        st = _lstat(incoming)
        if st is not None and not stat.S_ISDIR(st.st_mode):  # a link or a file: not ours
            log.warning("removing %s: not a folder (a link would send uploads elsewhere)",
                        incoming)
            incoming.unlink()
        path = incoming / new_id()
        path.mkdir(parents=True)
        return path

    def adopt(self, collection: str, names: list[str], spool: Path,
              metadata: dict[str, Any] | None = None) -> Job:
        """A job over files already spooled in ``spool`` (``00000``, ``00001``, ... in
        the order of ``names``), which moves to become the job's spool."""
        job = Job(id=new_id(), collection=collection,
                  files=[FileResult(source=n) for n in names], metadata=dict(metadata or {}))
        dest = self.spool_dir(job.id)
        dest.parent.mkdir(parents=True, exist_ok=True)
        Path(spool).rename(dest)
        return job

    def purge_incoming(self, older_than_s: float | None = None) -> None:
        """Remove uploads a dead process was still receiving (a link there is unlinked,
        never followed). ``older_than_s``: only those untouched that long (a jobs folder
        shared by several replicas, where another one may be receiving right now)."""
        incoming = self.root / INCOMING
        st = _lstat(incoming)
        if st is None:
            return
        if not stat.S_ISDIR(st.st_mode):
            incoming.unlink(missing_ok=True)
        elif older_than_s is None:
            shutil.rmtree(incoming, ignore_errors=True)
        else:
            cutoff = time.time() - older_than_s
            for entry in os.scandir(incoming):
                if self._newest_mtime(Path(entry.path)) <= cutoff:
                    path = Path(entry.path)
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)

    # --- state -----------------------------------------------------------------------------

    def save(self, job: Job) -> None:
        """Write the job's header atomically (and durably: a handful per job)."""
        path = self._header(job.id)
        self.root.mkdir(parents=True, exist_ok=True)
        data = json.dumps(job.to_json()).encode()
        # Unique per process and thread: replicas sharing the folder never collide.
        tmp = path.with_name(f"{path.name}.{os.getpid()}{threading.get_ident()}.tmp")
        with self._lock:
            tmp.unlink(missing_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)  # replaces a link named like the job, never its target

    def open_log(self, job: Job) -> JobLog:
        """A fresh log for the job's current attempt (after :meth:`save` of ``running``)."""
        path = self._log(job.id)
        path.unlink(missing_ok=True)  # an earlier attempt's, or a planted link: never followed
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW,
                     0o600)
        return JobLog(fd, job.attempts)

    def finish(self, job: Job) -> None:
        """Compact a finished job: every result into its header, then drop its log."""
        self.save(job)
        self._log(job.id).unlink(missing_ok=True)

    def load(self, job_id: str, replay_log: bool = True) -> Job:
        """The job as stored (its log replayed while it runs); BadJobState or OSError."""
        name = f"{self._check(job_id)}.json"
        job = job_from_json(json.loads(_read_regular(self.root, name)))
        if job.id != job_id:
            raise BadJobState(f"its id {job.id!r} is not its file name")
        if replay_log and job.status == "running":
            # No log yet (or a damaged one): the header alone is the state.
            with contextlib.suppress(OSError):
                replay(job, _read_regular(self.root, f"{job_id}.log"))
        return job

    def get(self, job_id: str) -> Job:
        self._check(job_id)
        try:
            return self.load(job_id)
        except FileNotFoundError:
            raise NotFound(f"job {job_id!r} does not exist") from None
        except (OSError, ValueError) as exc:  # BadJobState and JSON errors are ValueErrors
            raise NotFound(f"job {job_id!r} has unreadable state ({exc})") from None

    # --- the folder as a whole -------------------------------------------------------------

    def scan(self) -> Scan:
        """Sort the jobs folder's entries, logging (once per store) what is not ours."""
        found = Scan()
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return found
        for entry in entries:
            name = entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            regular, folder = stat.S_ISREG(st.st_mode), stat.S_ISDIR(st.st_mode)
            if name == INCOMING and folder:
                continue
            if regular and (m := _JSON.fullmatch(name)):
                found.jobs[m.group(1)] = st
            elif regular and (m := _LOG.fullmatch(name)):
                found.logs.add(m.group(1))
            elif regular and (m := _CLAIM.fullmatch(name)):
                found.claims.add(m.group(1))
            elif regular and _TMP.fullmatch(name):
                found.leftovers.append(name)
            elif folder and is_job_id(name):
                found.spools.add(name)
            else:
                kind = ("a symlink" if stat.S_ISLNK(st.st_mode) else
                        "a folder" if folder else "a file" if regular else "not a file")
                found.foreign[name] = f"{kind} that is not a job's"
        for job_id in found.logs - set(found.jobs):
            found.foreign[f"{job_id}.log"] = "a log without its job"
        for name, why in found.foreign.items():
            self._report(name, why)
        return found

    def _report(self, name: str, why: str) -> None:
        if name not in self._reported:
            self._reported.add(name)
            log.warning("ignoring %s in the jobs folder %s: %s", name, self.root, why)

    def jobs(self, found: Scan | None = None, replay_log: bool = True) -> Iterator[Job]:
        """Every readable job, in no particular order; unreadable ones are reported."""
        for job_id in (found or self.scan()).jobs:
            try:
                yield self.load(job_id, replay_log)
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:
                self._report(f"{job_id}.json", f"not a valid job ({exc})")

    def unfinished(self) -> list[Job]:
        """Jobs a previous process queued or was running, oldest first."""
        return sorted((j for j in self.jobs() if not j.final), key=lambda j: j.created)

    def prune(self, retention_s: float, now: float | None = None, full: bool = False
              ) -> list[str]:
        """Remove jobs that finished more than ``retention_s`` ago (spool, log, then the
        header, so an interruption leaves a job that the next pass prunes); their ids.

        ``full=False`` (the passes after a job finishes) is cheap when nothing is due: it
        reads only headers older than the retention, since a job's final header is
        written after it finished. ``full=True`` (at start) reads every header, so a
        file whose time says nothing (copied, restored) is judged by its ``finished``;
        it also removes our own leftovers: temp files, and spool folders that no job
        names once they are older than the retention (a crash between spooling and
        saving the job; at start no job of this process is half made)."""
        now = time.time() if now is None else now
        cutoff = now - retention_s
        found = self.scan()
        due = Scan(jobs={k: st for k, st in found.jobs.items()
                         if full or st.st_mtime <= cutoff})
        pruned = []
        for job in self.jobs(due, replay_log=False):
            ended = job.finished if job.finished is not None else due.jobs[job.id].st_mtime
            if job.final and ended <= cutoff:
                self.drop_spool(job)
                self._log(job.id).unlink(missing_ok=True)
                self._header(job.id).unlink(missing_ok=True)
                self._claim_path(job.id).unlink(missing_ok=True)  # final: nobody holds it
                pruned.append(job.id)
        if full:
            for name in found.leftovers:
                st = _lstat(self.root / name)
                if not self.shared or (st is not None
                                       and st.st_mtime <= now - self.tmp_grace_s):
                    (self.root / name).unlink(missing_ok=True)
            for job_id in found.claims - set(found.jobs):
                claim = self.claim(job_id)
                if claim is not None:  # no process is about to save this job
                    self._claim_path(job_id).unlink(missing_ok=True)
                    claim.release()
            for job_id in found.spools - set(found.jobs):
                if self._newest_mtime(self.root / job_id) <= cutoff:
                    log.info("removing the spool of job %s: no job state names it", job_id)
                    self._remove_spool(job_id)
        if pruned:
            log.info("pruned %d job(s) finished more than %.0f s ago", len(pruned),
                     retention_s)
        return pruned

    @staticmethod
    def _newest_mtime(folder: Path) -> float:
        times = [st.st_mtime for p in (folder, folder / "files") if (st := _lstat(p))]
        return max(times, default=0.0)

    # --- spools ----------------------------------------------------------------------------

    def items(self, job: Job) -> list[FileItem]:
        """The job's files: read where they are (path jobs) or from the spool."""
        if job.base_dir is not None:
            base = job.base_dir
            return [(f.source, file_reader(f.source, base)) for f in job.files]
        return self.spooled_items(job)

    def spooled_items(self, job: Job) -> list[FileItem]:
        """The job's files, read back from the spool in the order they were uploaded,
        never through a link; the runner checks each one's size for its type unread."""
        job_id = self._check(job.id)
        return [(f.source, SpoolReader(self.root, job_id, i, f.source))
                for i, f in enumerate(job.files)]

    def drop_spool(self, job: Job) -> None:
        self._remove_spool(job.id)

    def _remove_spool(self, job_id: str) -> None:
        """Remove ``<root>/<job_id>`` if it is a real folder; a link there is refused."""
        if not is_job_id(job_id):
            log.warning("not removing the spool of %r: not a job id", job_id)
            return
        path = self.root / job_id
        st = _lstat(path)
        if st is None:
            return
        if not stat.S_ISDIR(st.st_mode):
            self._report(job_id, "a spool that is not a real folder (left alone)")
            return
        # rmtree unlinks links inside without following them (fd-based on Linux).
        with contextlib.suppress(OSError):
            shutil.rmtree(path)
