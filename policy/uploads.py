"""Upload limits, the same for HTTP multipart uploads and MCP uploads (base64 in a tool
call): files per request, bytes per file, and two server-wide budgets.

- **In flight** (``api.max_inflight_upload_bytes``, :class:`UploadBudget`): bytes being
  received at once, all requests together. Given back when the request ends, stored or
  refused: once spooled and handed to a job the bytes are on disk, not in flight.
- **Spooled** (``api.max_spool_bytes``, :class:`SpoolBudget`): bytes of accepted
  uploads whose jobs are queued or running. Uploads arrive faster than ingest (OCR,
  embeddings) can drain them, and each waits on disk as its job's spool, so without
  this bound a burst of uploads fills the data dir's disk. Taken when a job is
  submitted, given back when the job ends (its spool is removed then); at start-up the
  spools of resumed jobs are counted again.

Past either budget a new upload is refused with :class:`~rag.errors.Busy` (HTTP 429
with ``Retry-After``, a tool error saying to retry on MCP); one upload that could never
fit is :class:`~rag.errors.LimitExceeded` instead, since retrying cannot help.

:class:`Uploads` holds both budgets; one is created per server (by the HTTP app) and
handed to the REST routes and to MCP over HTTP, so the two surfaces share one budget
instead of each allowing the whole amount.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from policy.images import ImagePolicy
from rag.errors import BadInput, Busy, LimitExceeded, MmragError, one_line
from rag.settings import ApiSettings, Settings

if TYPE_CHECKING:
    from pipeline import Job, Pipeline

# JSON bodies carry at most one base64 image (4/3 of its size) plus the conversation.
_JSON_OVERHEAD = 2 * 1024 * 1024


def json_body_limit(settings: Settings) -> int:
    """The cap on a JSON request body (REST and MCP over HTTP): one base64 image plus
    the conversation."""
    return ImagePolicy.from_settings(settings).max_bytes * 4 // 3 + _JSON_OVERHEAD


class UploadBudget:
    """The server-wide cap on upload bytes being received at once
    (``api.max_inflight_upload_bytes``).

    Each upload takes a :class:`UploadLease`: its declared ``Content-Length`` up front
    when there is one (a request that cannot fit is refused before a byte is read), else
    its bytes as they stream in. Memory per upload is bounded by the streaming parser;
    this bounds the number of uploads the disk and the parser threads serve at once,
    and tells clients to come back.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self._lock = threading.Lock()

    def lease(self, declared: int | None = None) -> UploadLease:
        lease = UploadLease(self)
        if declared is not None:
            lease.take(declared)
            lease.declared = True
        return lease

    def _take(self, n: int, held: int) -> None:
        with self._lock:
            if held + n > self.limit:
                raise LimitExceeded(
                    f"this upload is over {held + n:,} bytes; the server receives at most "
                    f"{self.limit:,} bytes of uploads at once (api.max_inflight_upload_bytes): "
                    "split it into smaller requests"
                )
            if self.in_flight + n > self.limit:
                raise Busy(
                    f"the server is receiving {self.in_flight:,} bytes of other uploads; "
                    f"with this one it would pass its limit of {self.limit:,} "
                    "(api.max_inflight_upload_bytes). Retry in a few seconds"
                )
            self.in_flight += n

    def _give(self, n: int) -> None:
        with self._lock:
            self.in_flight -= n


class UploadLease:
    """One request's share of the :class:`UploadBudget`; release it exactly once."""

    def __init__(self, budget: UploadBudget) -> None:
        self.budget = budget
        self.held = 0
        self.declared = False

    def take(self, n: int) -> None:
        self.budget._take(n, self.held)
        self.held += n

    def on_chunk(self, n: int) -> None:
        """Count streamed bytes, unless the request declared its length up front."""
        if not self.declared:
            self.take(n)

    def release(self) -> None:
        self.budget._give(self.held)
        self.held = 0


#: Seconds a client is told to wait when the spool is full: jobs drain it by the file.
SPOOL_RETRY_AFTER_S = 30


class SpoolBudget:
    """Bytes of accepted uploads waiting in job spools (``api.max_spool_bytes``).

    Bytes are reserved before a job is submitted and bound to its id after; a job that
    ends gives its bytes back (:meth:`job_ended`, a pipeline job listener). A job can end
    before its submitter binds it (a tiny file on an idle server), so an end that comes
    first is remembered and the bind that follows gives the bytes straight back.
    """

    _MAX_EARLY_ENDS = 1024

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._jobs: dict[str, int] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, n: int) -> None:
        """Refuse now an upload of about ``n`` bytes that would not fit (before its body
        is received); nothing is reserved."""
        with self._lock:
            self._refuse_over(n)

    def reserve(self, n: int) -> int:
        with self._lock:
            self._refuse_over(n)
            self.used += n
        return n

    def _refuse_over(self, n: int) -> None:
        if n > self.limit:
            raise LimitExceeded(
                f"this upload is {n:,} bytes; the server keeps at most {self.limit:,} bytes "
                "of uploads waiting for ingest (api.max_spool_bytes): split it into "
                "smaller requests"
            )
        if self.used + n > self.limit:
            raise Busy(
                f"{self.used:,} bytes of earlier uploads are waiting to be ingested; with "
                f"this one they would pass the server's limit of {self.limit:,} "
                f"(api.max_spool_bytes). Retry in {SPOOL_RETRY_AFTER_S} seconds, when "
                "queued jobs have made room",
                retry_after_s=SPOOL_RETRY_AFTER_S,
            )

    def give_back(self, n: int) -> None:
        """Return a reservation whose job was never submitted."""
        with self._lock:
            self.used -= n

    def bind(self, job_id: str, n: int) -> None:
        """Hold ``n`` reserved bytes (or, for a resumed job, bytes already on disk)
        until job ``job_id`` ends."""
        with self._lock:
            if job_id in self._ended:
                del self._ended[job_id]
                self.used -= n  # it ended already: its spool is gone
            else:
                self._jobs[job_id] = n

    def count(self, job_id: str, n: int) -> None:
        """Count the spool of a job resumed at start-up (not reserved, already there)."""
        with self._lock:
            self.used += n
        self.bind(job_id, n)

    def job_ended(self, job_id: str) -> None:
        with self._lock:
            n = self._jobs.pop(job_id, None)
            if n is not None:
                self.used -= n
                return
            self._ended[job_id] = None
            while len(self._ended) > self._MAX_EARLY_ENDS:
                self._ended.popitem(last=False)

    def bytes_of(self, job_id: str) -> int | None:
        with self._lock:
            return self._jobs.get(job_id)


JobHook = Callable[["Job"], None]


class Uploads:
    """Everything an upload must pass, whichever surface received it: one per server."""

    def __init__(self, api: ApiSettings) -> None:
        self.max_file_bytes = api.max_upload_bytes
        self.max_files = api.max_files_per_request
        self.in_flight = UploadBudget(api.max_inflight_upload_bytes)
        self.spool = SpoolBudget(api.max_spool_bytes)
        #: Called with each job an upload submitted (the API's job gauge).
        self.on_submitted: list[JobHook] = []
        self._attached: set[int] = set()

    # --- the pipeline's jobs --------------------------------------------------------------
    def attach(self, pipeline: Pipeline) -> None:
        """Give spooled bytes back as the pipeline's jobs end (once per pipeline)."""
        if id(pipeline) in self._attached:
            return
        self._attached.add(id(pipeline))

        def ended(job: Job) -> None:
            if job.base_dir is None:  # path jobs read files in place: no spool
                self.spool.job_ended(job.id)

        pipeline.on_job_finished(ended)

    def count_resumed(self, pipeline: Pipeline, job_ids: list[str]) -> None:
        """Count the spools of jobs a previous process left unfinished, now resumed."""
        for job_id in job_ids:
            n = pipeline.job_spool_bytes(job_id)
            if n:
                self.spool.count(job_id, n)

    # --- one request ----------------------------------------------------------------------
    def admit(self, declared: int | None) -> UploadLease:
        """Before a body is read: refuse what cannot fit in either budget, and lease its
        declared length (or lease as it streams when it declares none)."""
        self.spool.check(declared or 0)
        return self.in_flight.lease(declared)

    def check_count(self, n: int) -> None:
        if n > self.max_files:
            raise LimitExceeded(
                f"{n} files in one request; the limit is {self.max_files} "
                "(api.max_files_per_request): split the upload"
            )

    def check_size(self, name: str, size: int) -> None:
        if size > self.max_file_bytes:
            raise LimitExceeded(
                f"{name[:200]!r}: {size:,} bytes is over the {self.max_file_bytes:,} byte "
                "upload limit (api.max_upload_bytes)"
            )

    def check_files(self, files: list[tuple[str, int]]) -> None:
        """(name, size) of every file of one request."""
        self.check_count(len(files))
        for name, size in files:
            self.check_size(name, size)

    def decode_base64(self, name: str, data: str) -> bytes:
        """A file sent as base64 text (a ``data:`` URL is accepted too), size-checked
        before it is decoded."""
        raw = data.strip()
        if raw.startswith("data:"):
            raw = raw.partition(",")[2]
        if len(raw) * 3 // 4 > self.max_file_bytes + 3:
            raise LimitExceeded(
                f"{name[:200]!r}: over the {self.max_file_bytes:,} byte upload limit "
                "(api.max_upload_bytes); POST large files to "
                "/v1/collections/{name}/documents instead"
            )
        try:
            decoded = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise BadInput(f"{name[:200]}: data is not valid base64") from None
        self.check_size(name, len(decoded))
        return decoded

    def submit(
        self,
        pipeline: Pipeline,
        collection: str,
        names: list[str],
        spool: Path,
        sizes: list[int],
        metadata: dict[str, Any] | None = None,
    ) -> Job:
        """Queue the job over files received into ``spool`` (``00000``, ... in the order
        of ``names``), within the spool budget; its bytes are held until the job ends."""
        self.check_files(list(zip(names, sizes, strict=True)))
        n = self.spool.reserve(sum(sizes))
        try:
            job = pipeline.submit_spooled(collection, names, spool, metadata)
        except OSError as exc:
            self.spool.give_back(n)
            raise MmragError(f"cannot spool the upload to disk: {one_line(exc)}") from exc
        except BaseException:
            self.spool.give_back(n)
            raise
        self.spool.bind(job.id, n)
        for hook in self.on_submitted:
            hook(job)
        return job
