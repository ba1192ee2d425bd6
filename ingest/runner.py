"""The ingest job runner: files in, points out, one file at a time, never half a file.

For each file: hash its bytes (the doc id), skip it when the same bytes are already
stored under that source (``unchanged``) or under another source (``duplicate``), load
and OCR it, chunk, embed, upsert, then delete the points of that source's previous
version (``replaced``). The new points are written before the old ones go, and a failure
while writing removes what was written for that file, so a bad file never loses or
duplicates what was stored. One bad file is reported by name and the batch goes on.
Progress and per-file status go to a callback and, for API jobs, to a JSON state file.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ingest.chunking import chunk_document
from ingest.hashing import sha256_bytes
from ingest.loaders import load_document
from ingest.ocr import OcrEngine
from ingest.points import document_lead, embed_chunks
from rag.encoders import Encoders
from rag.errors import BadInput, LimitExceeded, MmragError, NotFound
from rag.media import MediaStore, media_key
from rag.settings import Settings
from rag.store import VectorStore
from rag.types import CollectionSpec, Filter

FileStatus = Literal["pending", "added", "replaced", "unchanged", "duplicate", "failed"]


@dataclass
class FileResult:
    source: str
    status: FileStatus = "pending"
    points: int = 0
    chunks: int = 0
    doc_id: str = ""
    error: str | None = None


@dataclass
class IngestReport:
    collection: str
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def points_written(self) -> int:
        return sum(f.points for f in self.files if f.status in ("added", "replaced"))

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    def summary(self) -> str:
        parts = [
            f"{self.count(s)} {s}"
            for s in ("added", "replaced", "unchanged", "duplicate", "failed")
            if self.count(s)
        ]
        return (
            f"{len(self.files)} files into {self.collection!r}: "
            + (", ".join(parts) or "nothing to do")
            + f"; {self.points_written} points written in {self.seconds:.1f}s"
        )


@dataclass
class Progress:
    """What a progress display needs after each step."""

    files_done: int
    files_total: int
    chunks: int
    current: str
    result: FileResult | None = None


ProgressFn = Callable[[Progress], None]

#: A file to ingest: its source name and a function that returns its bytes.
FileItem = tuple[str, Callable[[], bytes]]

HIDDEN = (".", "~$")


def iter_paths(paths: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """Files under the given files and folders, recursively, sorted, as the source names
    they will be stored under (the path as given, normalised). Hidden files are skipped
    inside folders; a path that does not exist is yielded so it is reported as failed."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith(HIDDEN))
                for name in sorted(files):
                    if not name.startswith(HIDDEN):
                        yield os.path.normpath(os.path.join(root, name))
        else:
            yield os.path.normpath(str(p))


def file_items(paths: Iterable[str | os.PathLike[str]], max_bytes: int) -> list[FileItem]:
    def reader(path: str) -> Callable[[], bytes]:
        def read() -> bytes:
            try:
                size = os.path.getsize(path)
            except OSError as exc:
                raise NotFound(f"{path}: cannot read ({exc.strerror or exc})") from exc
            if size > max_bytes:
                raise LimitExceeded(
                    f"{path}: {size} bytes is over the {max_bytes} byte limit "
                    "(ingest.max_file_bytes)"
                )
            try:
                return Path(path).read_bytes()
            except OSError as exc:
                raise NotFound(f"{path}: cannot read ({exc.strerror or exc})") from exc

        return read

    return [(p, reader(p)) for p in iter_paths(paths)]


class IngestRunner:
    def __init__(
        self,
        settings: Settings,
        store: VectorStore,
        encoders: Encoders,
        media: MediaStore,
        ocr: OcrEngine | None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.encoders = encoders
        self.media = media
        self.ocr = ocr
        # One writer per collection at a time: dedup checks and replacement must not race.
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, collection: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(collection, threading.Lock())

    def spec(self) -> CollectionSpec:
        return CollectionSpec(dense=self.encoders.dense_dims(), sparse=self.encoders.sparse_names())

    def ensure(self, collection: str) -> None:
        self.store.ensure(collection, self.spec())

    def run(
        self,
        collection: str,
        items: list[FileItem],
        metadata: dict[str, Any] | None = None,
        tenant: str | None = None,
        progress: ProgressFn | None = None,
    ) -> IngestReport:
        start = time.perf_counter()
        self.ensure(collection)
        report = IngestReport(collection, [FileResult(source=name) for name, _ in items])
        chunks_total = 0
        with self._lock(collection):
            for n, ((name, read), result) in enumerate(zip(items, report.files, strict=True)):
                if progress:
                    progress(Progress(n, len(items), chunks_total, name))
                self._ingest_one(collection, name, read, result, metadata or {}, tenant)
                chunks_total += result.chunks
                if progress:
                    progress(Progress(n + 1, len(items), chunks_total, name, result))
            if report.points_written >= self.settings.store.optimize_after:
                self.store.optimize(collection)
        report.seconds = time.perf_counter() - start
        return report

    def _existing_doc(self, collection: str, flt: Filter) -> tuple[str, str] | None:
        for hit in self.store.scroll(collection, flt, batch=1):
            return hit.doc_id, hit.source
        return None

    def _ingest_one(
        self,
        collection: str,
        name: str,
        read: Callable[[], bytes],
        result: FileResult,
        metadata: dict[str, Any],
        tenant: str | None,
    ) -> None:
        try:
            data = read()
            doc_id = sha256_bytes(data)
            result.doc_id = doc_id
            same = self._existing_doc(collection, Filter(source=name, doc_id=doc_id))
            if same is not None:
                result.status = "unchanged"
                return
            twin = self._existing_doc(collection, Filter(doc_id=doc_id))
            if twin is not None:
                result.status = "duplicate"
                result.error = f"same content as {twin[1]!r}, already stored"
                return
            doc = load_document(
                name,
                data,
                ingest=self.settings.ingest,
                ocr=self.ocr,
                render_pages=self.encoders.clip is not None,
            )
            chunks = chunk_document(
                doc,
                doc_id=doc_id,
                source=name,
                chunking=self.settings.chunking,
                visual_points=self.encoders.clip is not None,
                metadata=metadata,
                tenant=tenant,
            )
            if not chunks:
                raise BadInput(f"{name}: no text or image content found")
            result.chunks = sum(1 for c in chunks if c.chunk >= 0)
            self._write(collection, name, doc_id, chunks, doc)
            result.points = len(chunks)
            previous = self.store.delete(collection, Filter(source=name, exclude_doc_id=doc_id))
            result.status = "replaced" if previous else "added"
        except MmragError as exc:
            result.status, result.error = "failed", str(exc)
        except Exception as exc:  # a bug or an engine error: report it, keep the batch going
            result.status, result.error = "failed", f"{name}: {type(exc).__name__}: {exc}"

    def _write(self, collection: str, name: str, doc_id: str, chunks: list, doc: Any) -> None:
        side = self.settings.ingest.media_max_side
        for page in doc.pages:
            if page.image is not None:
                self.media.put(media_key(doc_id, page.page), page.image, max_side=side)
        batch = self.settings.ingest.batch_size
        first = next((p.text for p in doc.pages if p.text.strip()), "")
        leads = {doc_id: document_lead(first, self.settings.text.context_chars)}
        try:
            for i in range(0, len(chunks), batch):
                part = chunks[i : i + batch]
                points = embed_chunks(
                    part, self.encoders, self.settings.text.contextual_header, leads
                )
                self.store.upsert(collection, points)
        except BaseException:
            # Roll back this file's new points; its previous version is still intact.
            self.store.delete(collection, Filter(source=name, doc_id=doc_id))
            raise


# --- persistent jobs (the API's upload jobs) -------------------------------------------


@dataclass
class Job:
    id: str
    collection: str
    status: Literal["queued", "running", "done", "failed"] = "queued"
    files: list[FileResult] = field(default_factory=list)
    files_done: int = 0
    chunks: int = 0
    created: float = field(default_factory=time.time)
    finished: float | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        files = [FileResult(**f) for f in data.pop("files", [])]
        return cls(files=files, **data)


class JobStore:
    """Job state as one JSON file per job, written atomically, so a restarted server still
    answers ``GET /v1/jobs/{id}`` for jobs it ran before."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()

    def new(self, collection: str, names: list[str]) -> Job:
        job = Job(id=uuid.uuid4().hex, collection=collection,
                  files=[FileResult(source=n) for n in names])
        self.save(job)
        return job

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

    def run(self, runner: IngestRunner, job: Job, items: list[FileItem], **kwargs: Any) -> Job:
        """Run a job to completion, saving its state after every file."""
        job.status = "running"
        self.save(job)

        def on_progress(p: Progress) -> None:
            job.files_done, job.chunks = p.files_done, p.chunks
            if p.result is not None:
                job.files[p.files_done - 1] = p.result
                self.save(job)

        try:
            report = runner.run(job.collection, items, progress=on_progress, **kwargs)
            job.files = report.files
            job.status = "done"
        except MmragError as exc:
            job.status, job.error = "failed", str(exc)
        except Exception as exc:  # a bug must not leave the job "running" forever
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
        job.finished = time.time()
        self.save(job)
        return job
