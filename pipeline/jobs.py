"""Ingest jobs: their execution, and resuming them after a restart.

A job is a batch of files queued for one collection. Its state lives in
:mod:`pipeline.jobstate` (fields, transitions, strict parsing) and on disk through
:mod:`pipeline.jobstore` (a header per job, a log of per-file results, spooled uploads),
so:

- a spooled upload job interrupted by a restart (or a crash, ``kill -9``) is found again
  by :meth:`JobRunner.resume` and run again from its spooled files: the runner is
  idempotent per file, so files already stored are ``unchanged`` the second time;
- a path job (files read in place for the local CLI) is never resumed: the restart
  marks it failed, since the CLI that asked for it is gone and a job file naming a
  folder must never make a starting server read it;
- ``GET /v1/jobs/{id}`` answers for jobs a previous process ran, until they are pruned
  ``api.job_retention`` seconds after they finished (at start and, at most once a
  minute, when a job finishes);
- several processes (API replicas) may share one jobs folder (``api.jobs_dir`` on a
  shared filesystem): each job is run by the one process that holds its claim (an
  ``flock``, :class:`pipeline.jobstore.Claim`), any of them answers for any job from
  the folder, and a job whose process died is free to be resumed by the next one that
  starts.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from pipeline.jobstate import (
    FINAL,
    BadJobState,
    Job,
    JobStateError,
    JobStatus,
    cancel,
    complete,
    fail,
    is_job_id,
    requeue,
    start,
)
from pipeline.jobstore import Claim, JobLog, JobStore
from pipeline.runner import IngestRunner, Progress
from rag.errors import MmragError, one_line

__all__ = [
    "FINAL", "BadJobState", "Job", "JobListener", "JobRunner", "JobStateError", "JobStatus",
    "JobStore", "cancel", "complete", "fail", "is_job_id", "requeue", "start",
]

log = logging.getLogger("mmrag.jobs")

#: Why a path job left unfinished by a previous process ends failed instead of resuming.
RESTARTED = ("the server restarted before this job finished; jobs over files on the "
             "server's disk are not resumed: run `mmrag ingest` again")

#: Called with the job after it reaches a final status (metrics, notifications).
JobListener = Callable[[Job], None]


class JobRunner:
    """Runs jobs on one worker thread (the store takes one writer per collection anyway)
    and keeps track of which are live in this process."""

    #: Seconds between two retention passes triggered by finishing jobs.
    prune_every_s = 60.0

    #: Shared jobs folder: uploads untouched this long are a dead replica's (at start).
    stale_incoming_s = 3600.0

    def __init__(self, store: JobStore, runner: IngestRunner, workers: int = 1,
                 retention_s: float | None = None) -> None:
        self.store = store
        self._claims: dict[str, Claim] = {}
        self.runner = runner
        self.retention_s = (runner.settings.api.job_retention if retention_s is None
                            else retention_s)
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="mmrag-ingest")
        self._live: dict[str, Future[None]] = {}
        self._jobs: dict[str, Job] = {}  # the live jobs' state, as it changes
        self._lock = threading.Lock()
        self._closed = False
        self._pruned_at = float("-inf")
        self.listeners: list[JobListener] = []

    def submit(self, job: Job) -> Job:
        """Queue a job whose files are already in its spool directory."""
        claim = self.store.claim(job.id)
        if claim is None:  # a new id is never held: only a resume can race another process
            return job
        return self._queue(job, claim)

    def _queue(self, job: Job, claim: Claim) -> Job:
        self.store.save(job)
        with self._lock:
            self._claims[job.id] = claim
            if self._closed:
                cancel(job, "cancelled: the server is shutting down")
                self.store.save(job)
                self._claims.pop(job.id).release(final=True)
                return job
            self._jobs[job.id] = job
            self._live[job.id] = self._executor.submit(self._run, job)
        return job

    def resume(self) -> list[str]:
        """At start: prune what is past retention, fail the path jobs a previous process
        left unfinished, queue its spooled upload jobs again; the ids queued."""
        # Uploads a dead process was still receiving; in a shared folder only old ones
        # (another replica may be receiving one now).
        self.store.purge_incoming(self.stale_incoming_s if self.store.shared else None)
        self.prune(full=True)
        resumed = []
        for found in self.store.unfinished():
            with self._lock:
                if found.id in self._live:
                    continue
            claim = self.store.claim(found.id)
            if claim is None:  # another live process runs it
                continue
            try:
                job = self.store.load(found.id)  # as it is now that it is ours
            except (OSError, ValueError):
                claim.release()
                continue
            if job.final:
                claim.release(final=True)
                continue
            if job.base_dir is not None:
                log.warning("ingest job %s read files in %s; not resumed after a restart",
                            job.id, job.base_dir)
                fail(job, RESTARTED)
                self.store.finish(job)
                self.store.drop_spool(job)
                claim.release(final=True)
                continue
            requeue(job)
            log.info("resuming ingest job %s (%d files)", job.id, len(job.files))
            self._queue(job, claim)
            resumed.append(job.id)
        return resumed

    def prune(self, full: bool = False) -> list[str]:
        """Remove jobs finished more than ``retention_s`` ago; their ids."""
        self._pruned_at = time.monotonic()
        try:
            return self.store.prune(self.retention_s, full=full)
        except OSError as exc:  # a full or read-only disk must not stop jobs or a start
            log.warning("could not prune old jobs in %s: %s", self.store.root, one_line(exc))
            return []

    def _maybe_prune(self) -> None:
        if time.monotonic() - self._pruned_at >= self.prune_every_s:
            self.prune()

    def is_live(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._live

    def get(self, job_id: str) -> Job:
        """A live job from memory (no disk read per poll, whatever its size), any other
        from disk. The copy shares its FileResults, which are replaced, never changed."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and not job.final:  # final: read it once it is compacted
                return dataclasses.replace(job, files=list(job.files),
                                           metadata=dict(job.metadata))
        return self.store.get(job_id)

    def _run(self, job: Job) -> None:
        job_log: JobLog | None = None
        try:
            start(job)
            self.store.save(job)
            job_log = self.store.open_log(job)
            writer = job_log

            def on_progress(p: Progress) -> None:
                job.files_done, job.chunks = p.files_done, p.chunks
                if p.result is not None:
                    job.files[p.index] = p.result
                    writer.append(p.index, p.result, job.files_done, job.chunks)

            items = self.store.items(job)
            report = self.runner.run(
                job.collection, items, metadata=job.metadata,
                progress=on_progress, rebuild=job.rebuild,
            )
            complete(job, report.files)
        except MmragError as exc:
            fail(job, str(exc))
        except Exception as exc:  # a bug must still end the job, or pollers wait forever
            log.exception("ingest job %s crashed", job.id)
            fail(job, f"internal error: {one_line(exc)}")
        finally:
            if job_log is not None:
                job_log.close()
            if job.final:
                try:
                    self.store.finish(job)
                    self.store.drop_spool(job)
                except OSError as exc:  # a full disk: the job still ends in this process
                    log.error("cannot store the final state of job %s: %s", job.id,
                              one_line(exc))
                self._maybe_prune()
            with self._lock:
                self._live.pop(job.id, None)
                self._jobs.pop(job.id, None)
                claim = self._claims.pop(job.id, None)
            if claim is not None:
                claim.release(final=job.final)
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
            self._jobs.clear()
            claims, self._claims = list(self._claims.values()), {}
        for claim in claims:  # queued jobs stay queued on disk, free for any process
            claim.release()
