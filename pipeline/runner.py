"""The ingest runner: files in, points out, never half a file, crash or no crash.

For each file: hash its bytes (the doc id); skip it when that source already holds those
bytes completely (``unchanged``) or another source does (``duplicate``); otherwise load,
OCR and chunk it (:mod:`pipeline.prepare`, in worker processes when there are several
files), embed its chunks (batched across files, in this process, on the encoders'
device), upsert its points, write its **completion record** last, then delete the points
of the source's previous version (``replaced``).

The record is a vector-less point (``modality: record``, see :mod:`rag.payload`) holding
the document's point count. A document counts as stored only when its record exists, so
a process killed mid-file (``kill -9``) leaves points without a record, which the next
ingest of that file detects as partial, deletes and writes again; point ids are
deterministic, so nothing is ever duplicated. The same scheme works on every store
backend because it is only points and filters. One bad file is reported by name and the
batch goes on; progress and per-file status go to a callback (jobs persist them).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.blob import Blob, FileBlob, as_blob
from ingest.loaders import admit
from ingest.points import document_leads, embed_chunks
from pipeline.prepare import Prepared, WorkerPool, prepare, resolve_workers
from pipeline.report import FileResult, FileStatus, IngestReport, Progress, ProgressFn  # noqa: F401
from pipeline.versions import describe, stale_parts, text_pipeline
from rag.encoders import Encoders
from rag.errors import MmragError
from rag.media import MediaStore
from rag.ocr import OcrEngine
from rag.payload import WRITING
from rag.settings import Settings
from rag.store import VectorStore
from rag.store.records import Records
from rag.types import CollectionSpec, Point

if TYPE_CHECKING:
    from PIL import Image

#: A file to ingest: its source name and a function that returns its bytes, or a
#: :class:`~ingest.blob.Blob` that reads them where they are (files on disk, spooled
#: uploads: hashed in pieces, streamed when they are videos or recordings).
FileItem = tuple[str, Callable[[], "bytes | Blob"]]

HIDDEN = (".", "~$")

#: Another way to run a batch (:func:`pipeline.ray_executor.run_on_ray`): the runner, the
#: collection, the files, metadata, tenant, progress, rebuild; the same report.
Executor = Callable[["IngestRunner", str, list[FileItem], "dict[str, Any] | None",
                     "str | None", "ProgressFn | None", bool], IngestReport]


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


def file_reader(name: str, base_dir: str | None = None) -> Callable[[], Blob]:
    """The file ``name`` (relative to ``base_dir`` when given), opened when the runner
    reaches it; the size limit for its type is checked then (:func:`ingest.loaders.admit`),
    before it is hashed."""
    path = os.path.join(base_dir, name) if base_dir else name
    return lambda: FileBlob.at(name, path)


def list_files(paths: Iterable[str | os.PathLike[str]], base_dir: str | None = None
               ) -> list[str]:
    """Source names of the files under ``paths``; relative ones resolved against
    ``base_dir`` (another process's working directory) keep the names as given."""
    if not base_dir:
        return list(iter_paths(paths))
    names: list[str] = []
    for raw in paths:
        if os.path.isabs(raw):
            names.extend(iter_paths([raw]))
        else:
            names.extend(os.path.relpath(p, base_dir)
                         for p in iter_paths([os.path.join(base_dir, raw)]))
    return names


def file_items(
    paths: Iterable[str | os.PathLike[str]], base_dir: str | None = None
) -> list[FileItem]:
    return [(n, file_reader(n, base_dir)) for n in list_files(paths, base_dir)]


def open_item(runner: IngestRunner, name: str, read: Callable[[], bytes | Blob]) -> Blob:
    """The file of an item, its type and size admitted, not yet read."""
    blob = as_blob(name, read())
    admit(name, blob, ingest=runner.settings.ingest, video=runner.settings.video)
    return blob


@dataclass
class _Pending:
    """A file being prepared (in a worker or already done in this thread)."""

    index: int
    name: str
    doc_id: str
    future: Future[Prepared] | None = None
    prepared: Prepared | None = None
    error: BaseException | None = None

    def ready(self) -> bool:
        return self.future is None or self.future.done()

    def outcome(self) -> Prepared:
        if self.future is not None:
            return self.future.result()
        if self.error is not None:
            raise self.error
        assert self.prepared is not None
        return self.prepared


class WriteLocks:
    """Who is writing or deleting what, in this process.

    A batch holds its collection for its whole run (:meth:`collection`: one batch per
    collection at a time, and drop takes it too). Within it, an ingest holds a source
    from its decision (unchanged? partial? replace?) until its points and record are
    written; a delete of that source waits for it, and an ingest of a source being
    deleted waits for the delete, while other sources carry on. A dropped collection's
    running ingest stops at its next file (:meth:`cancel`)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._held: set[tuple[str, str]] = set()
        self._cancelled: set[str] = set()
        self._collections: dict[str, threading.Lock] = {}

    def collection(self, name: str) -> threading.Lock:
        with self._cond:
            return self._collections.setdefault(name, threading.Lock())

    def acquire(self, collection: str, source: str) -> None:
        with self._cond:
            while (collection, source) in self._held:
                self._cond.wait()
            self._held.add((collection, source))

    def release(self, collection: str, source: str) -> None:
        with self._cond:
            self._held.discard((collection, source))
            self._cond.notify_all()

    def cancel(self, collection: str) -> None:
        with self._cond:
            self._cancelled.add(collection)

    def uncancel(self, collection: str) -> None:
        with self._cond:
            self._cancelled.discard(collection)

    def cancelled(self, collection: str) -> bool:
        with self._cond:
            return collection in self._cancelled


class IngestRunner:
    def __init__(
        self,
        settings: Settings,
        store: VectorStore,
        encoders: Encoders,
        media: MediaStore,
        ocr: OcrEngine | None,
        records: Records | None = None,
        locks: WriteLocks | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.encoders = encoders
        self.media = media
        self.ocr = ocr
        self.records = records or Records(store, stale_s=settings.ingest.stale_write_s)
        self.sources = locks or WriteLocks()
        #: Called between files; the pipeline uses it to let other processes at the store.
        self.between_files: Callable[[], None] | None = None
        #: Runs :meth:`run` elsewhere (a Ray cluster); None: this process and its pool.
        self.executor: Executor | None = None

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
        rebuild: bool = False,
    ) -> IngestReport:
        """Ingest ``items``; ``rebuild`` rewrites stored documents even when their bytes
        and the text pipeline that wrote them are current. With an :attr:`executor` set
        (the pipeline sets :mod:`pipeline.ray_executor`'s for ``ingest.executor: ray``)
        the stages run there instead, with this runner's decisions and writes."""
        if self.executor is not None:
            return self.executor(self, collection, items, metadata, tenant, progress, rebuild)
        start = time.perf_counter()
        self.ensure(collection)
        report = IngestReport(collection, [FileResult(source=name) for name, _ in items])
        workers = resolve_workers(self.settings.ingest.workers)
        clip = self.encoders.clip
        geometry = clip.geometry() if clip is not None else None
        pool = (WorkerPool(self.settings, workers, geometry)
                if workers > 1 and len(items) > 1 else None)
        batch = _Batch(self, collection, report, metadata or {}, tenant, progress, pool,
                       geometry, rebuild)
        try:
            with self.sources.collection(collection):
                batch.run(items)
                if report.points_written >= self.settings.store.optimize_after:
                    self.store.optimize(collection)
        finally:
            batch.release_all()
            if pool is not None:
                pool.close()
        report.seconds = time.perf_counter() - start
        return report

    # --- decisions and writes (main thread, the source held) ----------------------------

    def decide(self, collection: str, name: str, doc_id: str, result: FileResult,
               rebuild: bool = False) -> bool:
        """Settle ``unchanged``/``duplicate`` without loading the file; True if it must be
        (re)written. What an interrupted earlier run left is finished or removed here:
        a complete record over missing points is repaired (rewritten), a write that never
        completed is removed, a replacement that never removed the old version does.

        A stored document written by another version of the text pipeline (its record's
        fingerprints, :mod:`pipeline.versions`), or any with ``rebuild``, is written
        again: ``rebuilt``, with the reason. It stays stored as it was until its new
        points are ready to write (a file that fails to load or embed now keeps its old
        version); then :meth:`write` removes and rewrites it, hidden from search until
        the new record completes, and a crash in between leaves a partial write that the
        next ingest removes and writes again, as after any crash."""
        records = self.records
        mine = [v for v in records.versions(collection, name) if v.doc_id == doc_id]
        if mine and mine[0].record.complete:
            if records.is_whole(collection, mine[0]):
                stale = stale_parts(mine[0].record.pipeline, mine[0].mime, self.settings)
                if stale or rebuild:
                    result.status = "rebuilt"
                    result.reason = describe(stale)
                    return True
                records.settle(collection, name, doc_id)
                result.status = "unchanged"
                return False
            # A record that promises points the store does not have: rewrite it.
            records.remove(collection, name, doc_id)
            result.status = "repaired"
            return True
        twins = [v for v in records.versions(collection, doc_ids=[doc_id])
                 if v.source != name and v.record.complete]
        if twins:
            result.status = "duplicate"
            result.error = f"same content as {twins[0].source!r}, already stored"
            return False
        if mine and mine[0].record.state == WRITING and not records.exclusive and (
                records.clock() - mine[0].record.written_at < records.stale_s):
            return True  # another process is writing the same bytes: same ids, no harm
        if mine or records.points_of(collection, name, doc_id):
            # Partial: a write or a delete that never finished.
            records.remove(collection, name, doc_id)
        return True

    def write(self, collection: str, name: str, doc_id: str, points: list[Point],
              mime: str, result: FileResult, tenant: str | None) -> None:
        """The record says ``writing``, then the points, then the record says
        ``complete``, then the source's other versions go (see rag/store/records.py)."""
        batch = self.settings.ingest.batch_size
        records = self.records
        if result.status == "rebuilt":  # same doc id, same point ids: the old one goes first
            records.remove(collection, name, doc_id)
        records.begin(collection, name, doc_id, mime, len(points), tenant)
        try:
            for i in range(0, len(points), batch):
                self.store.upsert(collection, points[i : i + batch])
        except BaseException:
            # Roll back this file's new points; its previous version is still intact.
            records.remove(collection, name, doc_id)
            raise
        records.finish(collection, name, doc_id, mime, len(points), tenant,
                       text_pipeline(self.settings, mime))
        result.points = len(points)
        previous = records.settle(collection, name, doc_id)
        if result.status not in ("repaired", "rebuilt"):
            result.status = "replaced" if previous else "added"


def _fail(result: FileResult, name: str, exc: BaseException) -> None:
    result.status = "failed"
    if isinstance(exc, MmragError):
        result.error = str(exc)
    else:  # a bug or an engine error: report it, keep the batch going
        result.error = f"{name}: {type(exc).__name__}: {exc}"


class _Batch:
    """One run over a list of files: files are prepared ahead (bounded), embedded in
    groups across files and written as they complete."""

    def __init__(self, runner: IngestRunner, collection: str, report: IngestReport,
                 metadata: dict[str, Any], tenant: str | None, progress: ProgressFn | None,
                 pool: WorkerPool | None,
                 geometry: Callable[[Image.Image], Image.Image] | None = None,
                 rebuild: bool = False) -> None:
        self.r = runner
        self.rebuild = rebuild
        self.geometry = geometry
        self.collection = collection
        self.report = report
        self.metadata = metadata
        self.tenant = tenant
        self.progress = progress
        self.pool = pool
        self.pending: list[_Pending] = []
        self.done = 0
        self.chunks = 0
        self.window = 2 * pool.workers if pool is not None else 1
        self.visual = runner.encoders.clip is not None
        self.held: set[str] = set()

    def hold(self, name: str) -> None:
        self.r.sources.acquire(self.collection, name)
        self.held.add(name)

    def release(self, name: str) -> None:
        if name in self.held:
            self.held.discard(name)
            self.r.sources.release(self.collection, name)

    def release_all(self) -> None:
        for name in list(self.held):
            self.release(name)

    def emit(self, index: int, name: str) -> None:
        self.release(name)
        self.done += 1
        result = self.report.files[index]
        self.chunks += result.chunks
        if self.progress:
            self.progress(Progress(self.done, len(self.report.files), self.chunks, name,
                                   result, index))

    def run(self, items: list[FileItem]) -> None:
        for index, (name, read) in enumerate(items):
            if self.r.sources.cancelled(self.collection):
                self.drain_cancelled(items, index)
                return
            if self.progress:
                self.progress(Progress(self.done, len(items), self.chunks, name))
            result = self.report.files[index]
            try:
                blob = open_item(self.r, name, read)
                doc_id = blob.sha256()
                result.doc_id = doc_id
                # Same bytes or same source already in flight: settle those first, so
                # decisions are exactly those of a one-file-at-a-time run.
                while any(p.doc_id == doc_id or p.name == name for p in self.pending):
                    self.commit(block=True)
                self.hold(name)
                if not self.r.decide(self.collection, name, doc_id, result, self.rebuild):
                    self.emit(index, name)
                    continue
            except Exception as exc:
                _fail(result, name, exc)
                self.emit(index, name)
                continue
            self.pending.append(self.start(index, name, blob, doc_id))
            while len(self.pending) >= self.window:
                self.commit(block=True)
            self.commit(block=False)
            if self.r.between_files is not None and not self.pending:
                self.r.between_files()
        while self.pending:
            self.commit(block=True)

    def drain_cancelled(self, items: list[FileItem], first: int) -> None:
        """The collection was dropped: write nothing more, say so for the rest."""
        while self.pending:
            self.commit(block=True)
        for index in range(first, len(items)):
            name = items[index][0]
            _fail(self.report.files[index], name, MmragError(
                f"{name}: not ingested: collection {self.collection!r} was dropped "
                "while this ingest ran"))
            self.emit(index, name)

    def start(self, index: int, name: str, data: Blob, doc_id: str) -> _Pending:
        item = _Pending(index, name, doc_id)
        if self.pool is not None:
            item.future = self.pool.submit(name, data, doc_id, self.metadata, self.tenant,
                                           self.visual)
        else:
            try:
                item.prepared = prepare(self.r.settings, name, data, doc_id, self.metadata,
                                        self.tenant, self.visual, self.r.ocr, self.geometry)
            except Exception as exc:
                item.error = exc
        return item

    def commit(self, block: bool) -> None:
        """Write the prepared files that are ready (waiting for one if ``block``),
        embedding their chunks together."""
        if not self.pending:
            return
        if block and not any(p.ready() for p in self.pending):
            wait([p.future for p in self.pending if p.future is not None],
                 return_when=FIRST_COMPLETED)
        group: list[tuple[_Pending, Prepared]] = []
        size = 0
        for item in [p for p in self.pending if p.ready()]:
            if group and size >= self.r.settings.ingest.batch_size:
                break
            self.pending.remove(item)
            result = self.report.files[item.index]
            try:
                prepared = item.outcome()
            except Exception as exc:
                _fail(result, item.name, exc)
                self.emit(item.index, item.name)
                continue
            result.chunks = sum(1 for c in prepared.chunks if c.chunk >= 0)
            group.append((item, prepared))
            size += len(prepared.chunks)
        if not group:
            return
        header = self.r.settings.text.contextual_header
        chunks = [c for _, p in group for c in p.chunks]
        try:
            leads = document_leads(chunks, self.r.settings.text.context_chars)
            points = embed_chunks(chunks, self.r.encoders, header, leads)
        except Exception as exc:
            for item, _ in group:
                _fail(self.report.files[item.index], item.name, exc)
                self.emit(item.index, item.name)
            return
        offset = 0
        for item, prepared in group:
            mine = points[offset : offset + len(prepared.chunks)]
            offset += len(prepared.chunks)
            result = self.report.files[item.index]
            try:
                self.r.write(self.collection, item.name, item.doc_id, mine, prepared.mime,
                             result, self.tenant)
            except Exception as exc:
                _fail(result, item.name, exc)
            self.emit(item.index, item.name)
