"""The ``ray`` executor: the same stages as :class:`pipeline.runner.IngestRunner`, run as a
Ray Data pipeline on a cluster (``ingest.executor: ray``; ``pip install 'mmrag[ray]'``).

The split, and why:

- **The driver** (this process) keeps everything that decides what the store holds: it
  reads each file once to hash it, takes the source's lock and calls the runner's own
  :meth:`~pipeline.runner.IngestRunner.decide` (``unchanged``, ``duplicate``, a partial
  write to remove, a stale one to rebuild), and later its
  :meth:`~pipeline.runner.IngestRunner.write` (record ``writing`` -> points in batches ->
  record ``complete`` -> settle). The record protocol is therefore the local executor's
  line for line, so crash safety, idempotence and several writers on one Qdrant server
  hold unchanged, and a ``kill -9`` of the driver leaves at most partial documents that
  the next run (local or Ray) removes and writes again. Writes are cheap next to OCR and
  embedding, and one writer per run keeps the store's embedded backends usable too.
- **Ray Data** does the heavy part, file by file: a CPU task per file reads the file
  where the cluster sees it (its path on a shared filesystem, or the bytes of an
  in-memory upload shipped once through the object store), checks it is the file the
  driver hashed, and runs :func:`pipeline.prepare.prepare` (load, render, OCR, chunk,
  media to ``store.media_dir``); an actor pool that holds the encoders embeds batches of
  files (``num_gpus`` where the cluster has GPUs) and streams the points back, and the
  driver writes each file as it arrives. A task or actor lost with its worker or node is
  retried by Ray (tasks: ``max_retries=-1``; actors restart); the work is a pure
  function of the file and the settings, so a retry yields the same points.
- Files whose bytes or source name repeat within a run wait for a second round, after
  the first is written, so their decisions are those of a one-file-at-a-time run (the
  local executor does the same by settling in-flight files first).

Progress, per-file results, limits and the report are those of the local executor; the
stages are the same functions, only where they run differs.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ingest.blob import Blob, as_blob
from ingest.points import document_leads, embed_chunks
from pipeline.prepare import prepare
from pipeline.report import FileResult, IngestReport, Progress, ProgressFn
from pipeline.runner import FileItem, IngestRunner, _Batch, _fail, open_item
from rag.errors import ConfigError, FileChanged, MmragError, one_line
from rag.settings import Settings, settings_from_dump

if TYPE_CHECKING:
    from PIL import Image

    from rag.encoders import Encoders
    from rag.ocr import OcrEngine

log = logging.getLogger("mmrag.ray")

#: Memory each prepare task reserves, so a node never takes more files at once than its
#: memory holds: a Ray worker running prepare (its OCR engine, Python, Ray's own share)
#: peaked at 1.2 GiB on the example corpus and 1.9 GiB on it twice over.
PREPARE_MEMORY = 2048 * 1024 * 1024

INSTALL = "the ray executor needs Ray: pip install 'mmrag[ray]' (or set ingest.executor: local)"


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ConfigError(INSTALL) from exc
    return ray


def connect(settings: Settings) -> Any:
    """Join the cluster ``ingest.ray_address`` names (or ``$RAY_ADDRESS``, or start a
    private one on this machine); a process already connected stays on its cluster."""
    ray = _ray()
    if not ray.is_initialized():
        address = settings.ingest.ray_address or None
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        except ConnectionError as exc:
            raise ConfigError(
                f"cannot join the Ray cluster at {address or '$RAY_ADDRESS'}: {exc} "
                "(check ingest.ray_address / --ray-address, or start one with `ray start "
                "--head`)") from exc
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # the driver shows its own bar (per file)
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return ray


# --- the work that runs on the cluster -------------------------------------------------


def _error(name: str, exc: BaseException) -> str:
    """The message the local executor would report for this failure (``_fail``)."""
    result = FileResult(source=name)
    _fail(result, name, exc)
    return result.error or ""


@dataclass
class _Job:
    """What every prepare task needs: shipped once per run, not per file."""

    settings: dict[str, Any]
    geometry: Callable[[Image.Image], Image.Image] | None
    metadata: dict[str, Any]
    tenant: str | None
    visual: bool
    #: index -> (source name, the driver's hash, how to read the bytes)
    files: dict[int, tuple[str, str, Callable[[], bytes | Blob]]]


#: Per worker process: settings and a single-threaded OCR engine, built once per
#: settings (a worker runs many tasks; building OCR per file would dominate).
_engines: dict[str, tuple[Settings, OcrEngine | None]] = {}


def _engine(dump: dict[str, Any]) -> tuple[Settings, OcrEngine | None]:
    settings = settings_from_dump(dump)
    key = settings.model_dump_json()
    if key not in _engines:
        from rag.ocr import build_ocr

        _engines[key] = (settings,
                         build_ocr(settings.ocr.model_copy(update={"threads": 1})))
    return _engines[key]


def prepare_row(row: dict[str, Any], job: _Job) -> dict[str, Any]:
    """One file: read where the cluster sees it, then :func:`prepare`. Failures are the
    file's (reported, not retried); only a lost worker makes Ray run this again."""
    index = int(row["index"])
    name, doc_id, read = job.files[index]
    out: dict[str, Any] = {"index": index, "blob": b"", "error": ""}
    try:
        blob = as_blob(name, read())
        if blob.sha256() != doc_id:  # this node's view of the file: what was hashed?
            raise FileChanged(f"{name}: the file changed while it was being ingested; "
                              "ingest it again")
        settings, ocr = _engine(job.settings)
        prepared = prepare(settings, name, blob, doc_id, job.metadata, job.tenant,
                           job.visual, ocr, job.geometry)
        out["blob"] = pickle.dumps(prepared, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        out["error"] = _error(name, exc)
    return out


class Embedder:
    """An encoder actor: loads the models once, embeds the chunks of a batch of files
    together (as the local executor embeds its ready files together)."""

    def __init__(self, dump: dict[str, Any], names: dict[int, str]) -> None:
        from rag.encoders import build_encoders

        self.settings = settings_from_dump(dump)
        self.names = names
        self.encoders: Encoders = build_encoders(self.settings)
        self.encoders.load()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        indexes = [int(i) for i in batch["index"]]
        blobs = list(batch["blob"])
        errors = [str(e) for e in batch["error"]]
        outs: list[bytes] = [b""] * len(indexes)
        ready = [(k, pickle.loads(b)) for k, b in enumerate(blobs) if not errors[k]]
        if ready:
            try:
                chunks = [c for _, p in ready for c in p.chunks]
                leads = document_leads(chunks, self.settings.text.context_chars)
                points = embed_chunks(chunks, self.encoders,
                                      self.settings.text.contextual_header, leads)
                offset = 0
                for k, prepared in ready:
                    n = len(prepared.chunks)
                    written = sum(1 for c in prepared.chunks if c.chunk >= 0)
                    outs[k] = pickle.dumps((prepared.mime, written, points[offset:offset + n]),
                                           protocol=pickle.HIGHEST_PROTOCOL)
                    offset += n
            except Exception as exc:  # the whole group fails, as locally
                for k, _ in ready:
                    errors[k] = _error(self.names[indexes[k]], exc)
        return {"index": indexes, "blob": outs, "error": errors}


# --- the driver ----------------------------------------------------------------------


@dataclass
class _Todo:
    index: int
    name: str
    doc_id: str
    read: Callable[[], bytes | Blob]


class _RayBatch(_Batch):
    """The local batch's bookkeeping (source locks, progress, cancellation), with the
    preparing and embedding done by Ray Data."""

    def run(self, items: list[FileItem]) -> None:
        remaining = list(enumerate(items))
        while remaining:
            todo: list[_Todo] = []
            later: list[tuple[int, FileItem]] = []
            for pos, (index, (name, read)) in enumerate(remaining):
                if self.r.sources.cancelled(self.collection):
                    self.cancel_rest([i for i, _ in remaining[pos:] + later], items)
                    later = []
                    break
                if self.progress:
                    self.progress(Progress(self.done, len(items), self.chunks, name))
                result = self.report.files[index]
                try:
                    doc_id = open_item(self.r, name, read).sha256()
                    result.doc_id = doc_id
                    if any(t.doc_id == doc_id or t.name == name for t in todo):
                        later.append((index, (name, read)))  # after this round is written
                        continue
                    self.hold(name)
                    if not self.r.decide(self.collection, name, doc_id, result, self.rebuild):
                        self.emit(index, name)
                        continue
                except Exception as exc:
                    _fail(result, name, exc)
                    self.emit(index, name)
                    continue
                todo.append(_Todo(index, name, doc_id, read))
            if todo:
                self.execute(todo)
            remaining = later
            if self.r.between_files is not None:
                self.r.between_files()

    def cancel_rest(self, indexes: list[int], items: list[FileItem]) -> None:
        for index in indexes:
            name = items[index][0]
            _fail(self.report.files[index], name, MmragError(
                f"{name}: not ingested: collection {self.collection!r} was dropped "
                "while this ingest ran"))
            self.emit(index, name)

    def execute(self, todo: list[_Todo]) -> None:
        """Prepare and embed ``todo`` on the cluster; write each file as it comes back."""
        settings = self.r.settings
        ray = connect(settings)
        from ray.data import ActorPoolStrategy

        dump = settings.model_dump()
        job = _Job(dump, self.geometry, self.metadata, self.tenant, self.visual,
                   {t.index: (t.name, t.doc_id, _shippable(ray, t.read)) for t in todo})
        names = {t.index: t.name for t in todo}
        by_index = {t.index: t for t in todo}
        gpus = _encoder_gpus(ray, settings)
        encoders = settings.ingest.ray_encoders or max(
            1, int(ray.cluster_resources().get("GPU", 0)) if gpus else 1)
        ds = ray.data.from_items([{"index": t.index} for t in todo],
                                 override_num_blocks=len(todo))
        # The memory reservation sizes how many files a node prepares at once, and keeps
        # prepare out of the encoder actors: Ray Data fuses a map into the next actor
        # stage when their resources match, which would run OCR inside the few encoder
        # actors instead of on every CPU.
        ds = ds.map(prepare_row, fn_kwargs={"job": job}, num_cpus=1, memory=PREPARE_MEMORY)
        ds = ds.map_batches(
            Embedder, fn_constructor_args=(dump, names), batch_format="numpy",
            batch_size=_files_per_batch(settings), compute=ActorPoolStrategy(size=encoders),
            num_gpus=gpus, num_cpus=1)
        seen: set[int] = set()
        why = "the cluster returned no result"
        try:
            for row in ds.iter_rows():
                index = int(row["index"])
                if index in seen:  # a retried block delivered twice: write it once
                    continue
                seen.add(index)
                self.write_row(by_index[index], str(row["error"]), bytes(row["blob"]))
        except Exception as exc:  # the pipeline itself failed (an actor could not start)
            cause = getattr(exc, "cause", None)
            why = (str(cause) if isinstance(cause, MmragError)
                   else f"the cluster failed: {type(exc).__name__}: {one_line(exc)}")
            log.error("the Ray pipeline failed: %s", why)
        for t in todo:  # never silently lost: a file Ray did not return is a failure
            if t.index not in seen:
                _fail(self.report.files[t.index], t.name,
                      MmragError(f"{t.name}: not ingested: {why}; ingest it again"))
                self.emit(t.index, t.name)

    def write_row(self, todo: _Todo, error: str, blob: bytes) -> None:
        result = self.report.files[todo.index]
        if error:
            result.status = "failed"
            result.error = error
            self.emit(todo.index, todo.name)
            return
        mime, chunks, points = pickle.loads(blob)
        result.chunks = chunks
        try:
            self.r.write(self.collection, todo.name, todo.doc_id, points, mime, result,
                         self.tenant)
        except Exception as exc:
            _fail(result, todo.name, exc)
        self.emit(todo.index, todo.name)


class _Shipped:
    """Bytes the driver read and put in Ray's object store, for a reader that cannot
    travel (it holds a lock or a handle): the worker fetches them from there."""

    def __init__(self, ref: Any) -> None:
        self.ref = ref

    def __call__(self) -> bytes:
        import ray

        data: bytes = ray.get(self.ref)
        return data


def _shippable(ray: Any, read: Callable[[], bytes | Blob]) -> Callable[[], bytes | Blob]:
    """``read`` itself when it pickles (a path on a shared filesystem, a spooled upload:
    the worker reads the file where it is), else its bytes through the object store."""
    try:
        ray.cloudpickle.dumps(read)
    except Exception:
        return _Shipped(ray.put(as_blob("", read()).read()))
    return read


def _encoder_gpus(ray: Any, settings: Settings) -> float:
    configured = settings.ingest.ray_encoder_gpus
    if configured >= 0:
        return configured
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def _files_per_batch(settings: Settings) -> int:
    """Files per encoder call: about ``ingest.batch_size`` chunks at a few per file."""
    return max(1, settings.ingest.batch_size // 8)


def run_on_ray(
    runner: IngestRunner,
    collection: str,
    items: list[FileItem],
    metadata: dict[str, Any] | None = None,
    tenant: str | None = None,
    progress: ProgressFn | None = None,
    rebuild: bool = False,
) -> IngestReport:
    """:meth:`IngestRunner.run` with the stages on Ray; the same report."""
    start = time.perf_counter()
    connect(runner.settings)  # Ray missing or the cluster unreachable: say so first
    runner.ensure(collection)
    report = IngestReport(collection, [FileResult(source=name) for name, _ in items])
    clip = runner.encoders.clip
    geometry = clip.geometry() if clip is not None else None
    batch = _RayBatch(runner, collection, report, metadata or {}, tenant, progress, None,
                      geometry, rebuild)
    try:
        with runner.sources.collection(collection):
            batch.run(items)
            if report.points_written >= runner.settings.store.optimize_after:
                runner.store.optimize(collection)
    finally:
        batch.release_all()
    report.seconds = time.perf_counter() - start
    return report


__all__ = ["Embedder", "connect", "prepare_row", "run_on_ray"]
