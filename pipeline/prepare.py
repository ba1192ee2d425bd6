"""The CPU-heavy half of ingesting one file: load, render, OCR, chunk, write media.

:func:`prepare` is a plain function of picklable arguments so it runs the same in the
calling thread or in a worker process (:class:`WorkerPool`). Workers are started with
``spawn`` (never ``fork``: the parent holds torch threads and open store files), build
their own OCR engine once, single-threaded, so ``workers`` processes on ``workers`` cores
never oversubscribe, and exit by themselves when their parent dies (``kill -9``).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ingest.blob import Blob, as_blob
from ingest.chunking import chunk_page
from ingest.loaders import open_document
from ingest.loaders.sniff import MEDIA_MIMES
from ingest.points import lead_chunk
from rag.errors import BadInput, LimitExceeded
from rag.media_objects import open_media
from rag.ocr import OcrEngine, build_ocr
from rag.payload import media_key
from rag.settings import Settings, settings_from_dump
from rag.transcribe import Transcriber, shared_transcriber
from rag.types import Chunk

if TYPE_CHECKING:
    from PIL import Image


@dataclass
class Prepared:
    """One file, ready to embed: its chunks (images kept only where CLIP needs them)."""

    chunks: list[Chunk]
    mime: str


def prepare(
    settings: Settings,
    name: str,
    data: bytes | Blob,
    doc_id: str,
    metadata: dict[str, Any],
    tenant: str | None,
    visual: bool,
    ocr: OcrEngine | None,
    geometry: Callable[[Image.Image], Image.Image] | None = None,
    transcriber: Transcriber | None = None,
) -> Prepared:
    """Load and chunk one file page by page, store its page images, and check the
    per-file limits. ``geometry`` (the CLIP encoder's, see ``ImageTextEncoder.geometry``)
    shrinks the pictures and pages kept for CLIP to the model's input.

    Each page's pixels are released before the next page is rendered: its media is kept
    as WebP bytes (written once the whole file has passed its checks, so a file that
    fails stores nothing) and CLIP keeps only what it looks at. A 200-page PDF with CLIP
    on peaked at 3.9 GB in a worker when every render was held to the end; see
    benchmarks/bench_pipeline.py --long-pdf."""
    ingest = settings.ingest
    # Every PDF page is rendered for CLIP's page points, and for the stored page image
    # that citations and the VLM show (``ingest.store_page_images``).
    if transcriber is None:
        transcriber = shared_transcriber(settings.transcribe)
    blob = as_blob(name, data)
    reader = open_document(name, blob, ingest=ingest, ocr=ocr,
                           render_pages=visual or ingest.store_page_images,
                           video=settings.video, transcriber=transcriber)
    media = open_media(settings)
    encoded: list[tuple[str, bytes]] = []
    chunks: list[Chunk] = []
    chars = 0
    try:
        for page in reader.iter_pages():
            chars += len(page.text)
            if chars > ingest.max_chars:  # stop before rendering and OCR'ing the rest
                raise LimitExceeded(
                    f"{name}: more than {ingest.max_chars:,} characters, the limit per file "
                    "(ingest.max_chars); split the file or raise the limit"
                )
            page_chunks = chunk_page(
                page, mime=reader.mime, title=reader.title, doc_id=doc_id, source=name,
                chunking=settings.chunking, visual_points=visual, metadata=metadata,
                tenant=tenant, page_media=ingest.store_page_images,
                windows=(settings.transcribe.window_s, settings.transcribe.overlap_s),
            )
            chunks.extend(page_chunks)
            if len(chunks) > ingest.max_chunks:
                raise LimitExceeded(
                    f"{name}: more than {ingest.max_chunks:,} chunks, the limit per file "
                    "(ingest.max_chunks); split the file or raise the limit"
                )
            if page.image is not None and (ingest.store_page_images
                                           or page.kind in ("image", "frame")):
                key = media_key(doc_id, page.page)  # the key its chunks carry
                if not media.exists(key):
                    encoded.append((key, media.encode(page.image, ingest.media_max_side)))
            for c in page_chunks:
                # Only CLIP needs pixels, and only those it looks at: never ship megabytes
                # of a rendered page back for nothing.
                if c.image is not None and not visual:
                    c.image = None
                elif c.image is not None and geometry is not None:
                    c.image = geometry(c.image)
    finally:
        reader.close()
    if not chunks:
        raise BadInput(f"{name}: no text or image content found")
    for key, webp in encoded:
        media.write(key, webp)
    if reader.mime in MEDIA_MIMES:  # streamed from the file, checked against doc_id
        with blob.open() as src:
            media.write_original(doc_id, src, name)
    lead = lead_chunk(chunks, settings.chunking.lead_chars)
    if lead is not None:
        chunks.append(lead)
    return Prepared(chunks, reader.mime)


# --- worker processes -------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(1.0)


def _init_worker(dump: dict[str, Any], parent: int,
                 geometry: Callable[[Image.Image], Image.Image] | None) -> None:
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    settings = settings_from_dump(dump)
    ocr_settings = settings.ocr.model_copy(update={"threads": 1})
    _worker["settings"] = settings
    _worker["ocr"] = build_ocr(ocr_settings)
    _worker["geometry"] = geometry


def _prepare_in_worker(
    name: str, data: Blob, doc_id: str, metadata: dict[str, Any], tenant: str | None,
    visual: bool,
) -> Prepared:
    return prepare(_worker["settings"], name, data, doc_id, metadata, tenant, visual,
                   _worker["ocr"], _worker["geometry"])


def resolve_workers(setting: int) -> int:
    """``-1``: one per core; ``0``: no pool (everything in the calling thread)."""
    return (os.cpu_count() or 1) if setting < 0 else setting


class WorkerPool:
    """Processes running :func:`prepare`, started on first use; ``geometry`` must be
    picklable and import no torch (workers stay light)."""

    def __init__(self, settings: Settings, workers: int,
                 geometry: Callable[[Image.Image], Image.Image] | None = None) -> None:
        self.settings = settings
        self.workers = workers
        self.geometry = geometry
        self._pool: ProcessPoolExecutor | None = None

    def submit(
        self, name: str, data: Blob, doc_id: str, metadata: dict[str, Any],
        tenant: str | None, visual: bool,
    ) -> Future[Prepared]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.settings.model_dump(), os.getpid(), self.geometry),
            )
        return self._pool.submit(_prepare_in_worker, name, data, doc_id, metadata, tenant,
                                 visual)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
