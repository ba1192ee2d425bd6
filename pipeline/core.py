"""The pipeline: the one composition root. It wires the stages (encoders, store, OCR,
loaders, chunking, rerank, generate) for ingest and for queries, owns their lifetimes and
the ingest jobs, and is the only way in for the surfaces (CLI, HTTP API, MCP, chat page).

Surfaces call its public methods and never reach the store, the runner or the media
store themselves; that keeps "what happens on a search" in one place whichever surface
asked. Construction is cheap; stages are built on first use, and :meth:`load` builds and
warms the ones a long-running server needs up front. Use it as a context manager so the
store is closed (flushed, its lock released) however the caller exits.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ingest.loaders.sniff import magic_mime
from pipeline.admission import Admission
from pipeline.batched import QueryBatchers
from pipeline.batching import BatchListener
from pipeline.gate import NoGate, StoreGate
from rag.encoders import Encoders, build_encoders
from rag.errors import BadInput, MmragError, NotFound
from rag.media import MediaStore
from rag.media_objects import open_media
from rag.payload import RECORD, media_doc_id
from rag.rerank import build_reranker
from rag.retrieve import Retriever
from rag.settings import Settings
from rag.store import VectorStore, build_store
from rag.store.records import Records
from rag.types import Answer, Filter, GenerationEvent, Hit

if TYPE_CHECKING:
    from PIL import Image

    from pipeline.jobs import Job, JobListener, JobRunner
    from pipeline.runner import FileItem, IngestReport, IngestRunner, ProgressFn, WriteLocks
    from rag.generate.base import Generator
    from rag.ocr import OcrEngine


F = TypeVar("F", bound=Callable[..., Any])


def _gated(method: F) -> F:
    """Run a store-touching method while this process holds the store (see gate.py)."""

    @functools.wraps(method)
    def wrapper(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        with self._gate.hold():
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Pipeline:
    def __init__(self, settings: Settings, on_wait: Callable[[str], None] | None = None
                 ) -> None:
        self.settings = settings
        #: Told (once per wait) when another process holds the embedded store.
        self.on_wait = on_wait
        if settings.offline:
            # Never wait on a model hub that is not there: fail fast with our own message.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- stages, built once on first use (private: surfaces use the methods below) --------
    @functools.cached_property
    def _store(self) -> VectorStore:
        return build_store(self.settings)

    @functools.cached_property
    def _gate(self) -> StoreGate | NoGate:
        store = self.settings.store
        if store.backend == "edge" or (store.backend == "qdrant" and store.path):
            return StoreGate(self.settings.data_path / "store.lock", self._release_store,
                             timeout_s=self.settings.store.lock_timeout_s,
                             on_wait=self.on_wait, linger_s=self.settings.store.linger_s)
        return NoGate()  # a Qdrant server takes any number of clients

    def _release_store(self) -> None:
        if "_store" in self.__dict__:
            self._store.close()

    def pin_store(self) -> None:
        """Keep the embedded store for this process's lifetime (a server)."""
        self._gate.pin()

    @functools.cached_property
    def _locks(self) -> WriteLocks:
        from pipeline.runner import WriteLocks

        return WriteLocks()

    @functools.cached_property
    def _records(self) -> Records:
        """The record protocol; ``exclusive`` where only this process can write (an
        embedded store behind the gate), else several writers share a server."""
        return Records(self._store, exclusive=not isinstance(self._gate, NoGate),
                       stale_s=self.settings.ingest.stale_write_s)

    @functools.cached_property
    def _encoders(self) -> Encoders:
        return build_encoders(self.settings)

    @functools.cached_property
    def _media(self) -> MediaStore:
        return open_media(self.settings)

    @functools.cached_property
    def _ocr(self) -> OcrEngine | None:
        from rag.ocr import build_ocr

        return build_ocr(self.settings.ocr)

    @functools.cached_property
    def _admission(self) -> Admission:
        api = self.settings.api
        workers = api.query_workers if api.query_workers > 0 else 8 * (os.cpu_count() or 1)
        return Admission(api.max_queue, workers)

    @functools.cached_property
    def _batchers(self) -> QueryBatchers:
        api = self.settings.api
        admission = self._admission
        # Queries that may reach a stage soon: those admitted and not waiting for a slot.
        return QueryBatchers(api.max_batch, api.batch_wait_ms / 1000,
                             expect=lambda: admission.in_flight - admission.queued)

    @functools.cached_property
    def _retriever(self) -> Retriever:
        # Queries reach the encoders, OCR and the store through micro-batchers, so
        # concurrent searches from every surface share one model call per stage.
        b = self._batchers
        return Retriever(
            self.settings.retrieval,
            b.store(self._store),
            b.encoders(self._encoders),
            build_reranker(self.settings.retrieval, self._media, self.settings.offline),
            read_image=b.reader(self._read_image) if self._ocr is not None else None,
            complete=b.complete(self._records.complete_doc_ids),
        )

    @functools.cached_property
    def _runner(self) -> IngestRunner:
        from pipeline.runner import IngestRunner

        runner = IngestRunner(self.settings, self._store, self._encoders, self._media, self._ocr,
                              self._records, self._locks)
        runner.between_files = self._gate.let_waiters_in
        if self.settings.ingest.executor == "ray":  # where the stages run is ours to pick
            from pipeline.ray_executor import run_on_ray

            runner.executor = run_on_ray
        return runner

    @functools.cached_property
    def _generator(self) -> Generator:
        from rag.generate import build_generator

        return build_generator(self.settings, self._media)

    @functools.cached_property
    def _jobs(self) -> JobRunner:
        from pipeline.jobs import JobRunner, JobStore

        return JobRunner(JobStore(self.settings.jobs_path,
                                  shared=bool(self.settings.api.jobs_dir)), self._runner)

    def _read_image(self, image: Image.Image) -> str:
        from rag.ocr import ocr_text

        assert self._ocr is not None
        return ocr_text(self._ocr.read(image))

    def load(self) -> None:
        """Build every stage and load every model now: a missing model fails at start-up,
        not mid-request, and server threads never race to build a stage lazily."""
        _ = (self._store, self._media, self._retriever, self._runner)
        self._encoders.load()
        reranker_load = getattr(self._retriever.reranker, "load", None)
        if reranker_load is not None:
            reranker_load()
        if self._ocr is not None and hasattr(self._ocr, "load"):
            self._ocr.load()
        self._generator.load()
        freeze_heap()

    def close(self) -> None:
        if "_batchers" in self.__dict__:
            self._batchers.close()
        if "_jobs" in self.__dict__:
            self._jobs.close()
        if "_store" in self.__dict__:
            self._store.close()
        if "_gate" in self.__dict__:
            self._gate.close()

    # --- ingest ---------------------------------------------------------------------------
    @_gated
    def ingest(
        self,
        collection: str,
        paths: list[str],
        metadata: dict[str, Any] | None = None,
        progress: ProgressFn | None = None,
        rebuild: bool = False,
    ) -> IngestReport:
        """Ingest files and folders; ``rebuild`` writes stored documents again even when
        they are current (``mmrag ingest --rebuild``)."""
        from pipeline.runner import file_items

        items = file_items(paths)
        return self._runner.run(collection, items, metadata=metadata, progress=progress,
                                rebuild=rebuild)

    @_gated
    def ingest_bytes(
        self,
        collection: str,
        files: dict[str, bytes],
        metadata: dict[str, Any] | None = None,
        progress: ProgressFn | None = None,
    ) -> IngestReport:
        """Ingest in-memory files under the given source names, in this thread."""
        items: list[FileItem] = [(name, _constant(data)) for name, data in files.items()]
        return self._runner.run(collection, items, metadata=metadata, progress=progress)

    # --- jobs (uploads ingested in the background) ----------------------------------------
    @_gated
    def new_job(self, collection: str, names: list[str],
                metadata: dict[str, Any] | None = None) -> tuple[Job, Path]:
        """A job for ``names`` (not yet queued) and the folder its files must be spooled
        into as ``00000``, ``00001``, ... in the same order; then :meth:`submit_job`."""
        self._runner.ensure(collection)
        job = self._jobs.store.new(collection, names, metadata)
        return job, self._jobs.store.spool_dir(job.id)

    @_gated
    def submit_path_job(self, collection: str, paths: list[str], cwd: str,
                        metadata: dict[str, Any] | None = None, rebuild: bool = False
                        ) -> Job:
        """A job over files on this machine, read in place (``cwd`` resolves relative
        paths, whose names are kept as given, as ``mmrag ingest`` would)."""
        from pipeline.runner import list_files

        if not os.path.isabs(cwd):
            raise BadInput(f"cwd must be an absolute path, got {cwd!r}")
        self._runner.ensure(collection)
        names = list_files(paths, cwd)
        job = self._jobs.store.new(collection, names, metadata)
        job.base_dir = cwd
        job.rebuild = rebuild
        return self._jobs.submit(job)

    def new_spool(self) -> Path:
        """An empty folder on the data dir's disk to receive an upload into, file by file
        as ``00000``, ``00001``, ...; then :meth:`submit_spooled` or :meth:`discard_spool`."""
        return self._jobs.store.new_incoming()

    @_gated
    def submit_spooled(self, collection: str, names: list[str], spool: Path,
                       metadata: dict[str, Any] | None = None) -> Job:
        """Queue an ingest job over the files received into ``spool`` (from
        :meth:`new_spool`), stored under ``names`` in the same order. The folder becomes
        the job's spool (a rename, no copy), so the job survives a restart."""
        self._runner.ensure(collection)
        return self._jobs.submit(self._jobs.store.adopt(collection, names, spool, metadata))

    def discard_spool(self, spool: Path) -> None:
        """Remove a spool whose upload was refused or broke off."""
        shutil.rmtree(spool, ignore_errors=True)

    def submit_job(self, job: Job) -> Job:
        return self._jobs.submit(job)

    def discard_job(self, job: Job) -> None:
        """Forget a job that was never submitted (its upload was refused)."""
        self._jobs.store.drop_spool(job)

    def job_spool_bytes(self, job_id: str) -> int:
        """Bytes of a job's spooled files still on disk (0 once its spool is dropped):
        what a server counts against its spool bound for a job resumed at start-up."""
        spool = self._jobs.store.spool_dir(job_id)
        total = 0
        for path in spool.iterdir() if spool.is_dir() else ():
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    def job(self, job_id: str) -> Job:
        return self._jobs.get(job_id)

    def job_is_live(self, job_id: str) -> bool:
        return self._jobs.is_live(job_id)

    def resume_jobs(self) -> list[str]:
        """Queue again the jobs a previous process left unfinished (after a crash)."""
        return self._jobs.resume()

    def on_job_finished(self, listener: JobListener) -> None:
        self._jobs.listeners.append(listener)

    # --- admission and batching (serving many clients at once) ---------------------------
    def admit(self) -> contextlib.AbstractContextManager[None]:
        """A place among the queries served at once (``api.max_queue``), held for the
        ``with`` block, or :class:`~rag.errors.Busy`; never blocks. Searches and answers
        take one themselves (and a run slot, ``api.query_workers``); a surface takes the
        place earlier, on its event loop, to count its own waiting too."""
        return self._admission.admit()

    def on_batch(self, listener: BatchListener) -> None:
        """Be told (stage, items, seconds each caller queued) after each batched call."""
        self._batchers.listeners.append(listener)
        self._admission.on_wait.append(listener)

    def queue_depths(self) -> dict[str, int]:
        """Queries admitted (``admitted``), those of them waiting for a run slot
        (``waiting``) and items waiting at each batched stage."""
        return {"admitted": self._admission.in_flight, "waiting": self._admission.queued,
                **self._batchers.depths()}

    @property
    def shed_queries(self) -> int:
        """Queries refused so far because ``api.max_queue`` were being served."""
        return self._admission.shed

    # --- retrieval and answers ------------------------------------------------------------
    def search(
        self,
        collection: str,
        text: str | None = None,
        image: Image.Image | None = None,
        limit: int | None = None,
        flt: Filter | None = None,
    ) -> list[Hit]:
        with self._admission.run():
            return self._search(collection, text, image, limit, flt)

    @_gated
    def _search(
        self,
        collection: str,
        text: str | None,
        image: Image.Image | None,
        limit: int | None,
        flt: Filter | None,
    ) -> list[Hit]:
        return self._retriever.search(collection, text, image, limit, flt)

    @_gated
    def _context(
        self,
        collection: str,
        question: str,
        image: Image.Image | None,
        history: list[dict[str, Any]] | None,
        flt: Filter | None,
        limit: int | None,
    ) -> list[Hit]:
        from rag.generate.base import condense_query

        if not question.strip() and image is None:
            raise BadInput("ask needs a question, an image, or both")
        query = condense_query(question, history or []) if history else question
        return self.search(collection, query, image, limit or self.settings.generator.max_sources,
                           flt)

    def ask(
        self,
        collection: str,
        question: str,
        image: Image.Image | None = None,
        history: list[dict[str, Any]] | None = None,
        flt: Filter | None = None,
        limit: int | None = None,
    ) -> Answer:
        with self._admission.admit():  # one place for the whole answer
            hits = self._context(collection, question, image, history, flt, limit)
            with self._generating():
                return self._generator.generate(question, hits, history, image)

    def _generating(self) -> contextlib.AbstractContextManager[None]:
        """A run slot for generating here (extractive, a local VLM): CPU work like a
        search's. A remote model's answer is a wait, not work: holding a slot for its
        seconds would stall every search behind a few chats."""
        if self.settings.generator.backend == "openai":
            return contextlib.nullcontext()
        return self._admission.run()

    def ask_stream(
        self,
        collection: str,
        question: str,
        image: Image.Image | None = None,
        history: list[dict[str, Any]] | None = None,
        flt: Filter | None = None,
        limit: int | None = None,
    ) -> Iterator[GenerationEvent]:
        hits = self._context(collection, question, image, history, flt, limit)
        return self._generator.stream(question, hits, history, image)

    @property
    def generator_name(self) -> str:
        return self.settings.generator.backend

    # --- query images -----------------------------------------------------------------------
    def decode_image(self, name: str, data: bytes) -> Image.Image:
        """A query image from its bytes, checked and decoded like an ingested picture
        (magic bytes, pixel limits); ``name`` appears in errors."""
        from ingest.loaders import load_document

        doc = load_document(name, data, ingest=self.settings.ingest, ocr=None, render_pages=True)
        image = doc.pages[0].image if doc.pages else None
        if image is None:
            raise BadInput(f"{name}: not an image")
        return image

    def read_image(self, path: str | Path) -> Image.Image:
        """A query image from a file (the CLI's ``--image``)."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise MmragError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        return self.decode_image(str(path), data)

    # --- collections and documents --------------------------------------------------------
    @_gated
    def collections(self) -> list[dict[str, Any]]:
        return [{"name": c, "points": self.count(c)} for c in self._store.collections()]

    @_gated
    def collection_names(self) -> list[str]:
        return self._store.collections()

    @_gated
    def has_collection(self, name: str) -> bool:
        return self._store.exists(name)

    @_gated
    def ensure_collection(self, name: str) -> bool:
        """Create ``name`` with this profile's vectors if missing; True if it was created."""
        existed = self.has_collection(name)
        self._runner.ensure(name)
        return not existed

    @_gated
    def count(self, collection: str) -> int:
        """Points of complete documents (what search can return), from their records."""
        return self._records.complete_points(collection)

    @_gated
    def documents(self, collection: str) -> list[dict[str, Any]]:
        """One row per stored source: its doc id, type, pages and point count. Only
        documents whose record is complete and whose points are all there are listed:
        a write in flight, a crashed one or a half-done delete is not a document."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        promised: dict[tuple[str, str], int] = {}
        for hit in self._store.scroll(collection):
            key = (hit.source, hit.doc_id)
            if hit.modality == RECORD:
                if hit.record is not None and hit.record.complete:
                    promised[key] = hit.record.points
                continue
            row = rows.setdefault(
                key,
                {"source": hit.source, "doc_id": hit.doc_id, "mime": hit.mime, "points": 0,
                 "pages": 0},
            )
            row["points"] += 1
            row["pages"] = max(row["pages"], hit.page)
        whole = [r for key, r in rows.items() if promised.get(key) == r["points"]]
        return sorted(whole, key=lambda r: r["source"])

    @_gated
    def delete_source(self, collection: str, source: str) -> int:
        """Remove every point of ``source``; returns how many (records not counted).

        Waits for an ingest of the same source in this process to finish its file, and
        removes the records first, so an interrupted delete leaves nothing visible."""
        self._locks.acquire(collection, source)
        try:
            deleted, documents = self._records.remove_source(collection, source)
        finally:
            self._locks.release(collection, source)
        if deleted <= 0 and not documents:
            raise NotFound(f"{source!r} is not in collection {collection!r} "
                           f"(see `mmrag documents --collection {collection}`)")
        return deleted

    @_gated
    def drop(self, collection: str) -> None:
        """Drop ``collection``; an ingest running into it in this process stops at its
        next file (its remaining files fail, saying why) before the drop."""
        self._locks.cancel(collection)
        try:
            with self._locks.collection(collection):
                self._store.drop(collection)
        finally:
            self._locks.uncancel(collection)

    # --- media ----------------------------------------------------------------------------
    def media_bytes(self, key: str, size: int | None = None) -> bytes:
        """WebP bytes of a stored picture or page render (a thumbnail with ``size``)."""
        return self._media.read_bytes(key, size)

    def original_file(self, key: str) -> tuple[Path, str]:
        """The stored original of a video or recording (``<doc_id>-orig``) and its mime
        type, sniffed from its first bytes; only files inside the media store."""
        path = self._media.original_path(key)
        try:
            with path.open("rb") as fh:
                head = fh.read(64)
        except OSError as exc:
            raise NotFound(f"media {key!r} does not exist") from exc
        return path, magic_mime(head) or "application/octet-stream"

    @_gated
    def media_collections(self, key: str) -> list[str]:
        """The collections that store the document a media key belongs to: media files
        are shared by content, so access to one follows access to those collections."""
        doc_id = media_doc_id(key)
        if doc_id is None:
            return []
        return [c for c in self._store.collections()
                if self._store.count(c, Filter(doc_id=doc_id))]


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def freeze_heap() -> None:
    """Move everything alive now (the loaded models: ~600,000 objects) out of the
    garbage collector's sight. They live as long as the process, but a full collection
    walks every tracked object, and a search allocates enough (payloads, hits) to set
    one off every few requests: 20.2 -> 12.9 ms per in-process search with the offline
    profile (gc.freeze, as large Python servers do after start-up)."""
    import gc

    gc.collect()
    gc.freeze()
