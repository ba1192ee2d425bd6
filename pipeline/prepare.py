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
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from ingest.chunking import chunk_document
from ingest.loaders import load_document
from ingest.points import lead_chunk
from rag.errors import BadInput, LimitExceeded
from rag.media import MediaStore
from rag.ocr import OcrEngine, build_ocr
from rag.payload import media_key
from rag.settings import Settings, settings_from_dump
from rag.types import Chunk


@dataclass
class Prepared:
    """One file, ready to embed: its chunks (images kept only where CLIP needs them)."""

    chunks: list[Chunk]
    mime: str


def prepare(
    settings: Settings,
    name: str,
    data: bytes,
    doc_id: str,
    metadata: dict[str, Any],
    tenant: str | None,
    visual: bool,
    ocr: OcrEngine | None,
) -> Prepared:
    """Load and chunk one file, store its page images, and check the per-file limits."""
    ingest = settings.ingest
    # Every PDF page is rendered for CLIP's page points, and for the stored page image
    # that citations and the VLM show (``ingest.store_page_images``).
    doc = load_document(name, data, ingest=ingest, ocr=ocr,
                        render_pages=visual or ingest.store_page_images)
    chars = sum(len(p.text) for p in doc.pages)
    if chars > ingest.max_chars:
        raise LimitExceeded(
            f"{name}: {chars:,} characters is over the {ingest.max_chars:,} character limit "
            "per file (ingest.max_chars); split the file or raise the limit"
        )
    chunks = chunk_document(
        doc, doc_id=doc_id, source=name, chunking=settings.chunking,
        visual_points=visual, metadata=metadata, tenant=tenant,
        page_media=ingest.store_page_images,
    )
    if not chunks:
        raise BadInput(f"{name}: no text or image content found")
    if len(chunks) > ingest.max_chunks:
        raise LimitExceeded(
            f"{name}: {len(chunks):,} chunks is over the {ingest.max_chunks:,} chunk limit "
            "per file (ingest.max_chunks); split the file or raise the limit"
        )
    media = MediaStore(settings.data_path / "media")
    for page in doc.pages:  # chunks of these pages carry their media keys
        if page.image is not None and (ingest.store_page_images or page.kind == "image"):
            media.put(media_key(doc_id, page.page), page.image, max_side=ingest.media_max_side)
    if not visual:
        for c in chunks:
            c.image = None  # only CLIP needs pixels; never ship them back for nothing
    lead = lead_chunk(chunks, settings.chunking.lead_chars)
    if lead is not None:
        chunks.append(lead)
    return Prepared(chunks, doc.mime)


# --- worker processes -------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(1.0)


def _init_worker(dump: dict[str, Any], parent: int) -> None:
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    settings = settings_from_dump(dump)
    ocr_settings = settings.ocr.model_copy(update={"threads": 1})
    _worker["settings"] = settings
    _worker["ocr"] = build_ocr(ocr_settings)


def _prepare_in_worker(
    name: str, data: bytes, doc_id: str, metadata: dict[str, Any], tenant: str | None,
    visual: bool,
) -> Prepared:
    return prepare(_worker["settings"], name, data, doc_id, metadata, tenant, visual,
                   _worker["ocr"])


def resolve_workers(setting: int) -> int:
    """``-1``: one per core; ``0``: no pool (everything in the calling thread)."""
    return (os.cpu_count() or 1) if setting < 0 else setting


class WorkerPool:
    """Processes running :func:`prepare`, started on first use."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def submit(
        self, name: str, data: bytes, doc_id: str, metadata: dict[str, Any],
        tenant: str | None, visual: bool,
    ) -> Future[Prepared]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.settings.model_dump(), os.getpid()),
            )
        return self._pool.submit(_prepare_in_worker, name, data, doc_id, metadata, tenant,
                                 visual)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
