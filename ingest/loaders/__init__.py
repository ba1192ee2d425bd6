"""Loaders: bytes of one file in, pages (text, image, OCR lines) out.

The type comes from the content (:mod:`ingest.loaders.sniff`); one reader class per kind
of file, chosen from :data:`READERS`. Every failure is a :mod:`rag.errors` type whose
message starts with the file name: hostile or broken files must never surface a
library exception to the job runner or the API.
"""

from __future__ import annotations

from collections.abc import Callable

from ingest.blob import Blob, as_blob
from ingest.loaders.base import (
    DocumentReader,
    LoadedDocument,
    LoadedPage,
    LoadRequest,
    PageKind,
    guarded,
    title_of,
)
from ingest.loaders.image import ImageReader, decode_image
from ingest.loaders.media import MediaReader
from ingest.loaders.pdf import PdfReader
from ingest.loaders.sniff import IMAGE_MIMES, MEDIA_MIMES, PDF, SUPPORTED, sniff
from ingest.loaders.text import TextReader, decode_text
from rag.ocr.base import OcrEngine
from rag.settings import IngestSettings, VideoSettings
from rag.transcribe.base import Transcriber

# Kind of file -> reader. A new format is one reader module plus one entry here (and its
# magic bytes in sniff.py).
READERS: dict[str, Callable[[LoadRequest], DocumentReader]] = {
    "pdf": PdfReader,
    "image": ImageReader,
    "text": TextReader,
    "media": MediaReader,
}


def reader_kind(mime: str) -> str:
    if mime == PDF:
        return "pdf"
    if mime in IMAGE_MIMES:
        return "image"
    if mime in MEDIA_MIMES:
        return "media"
    return "text"


def admit(name: str, blob: Blob, *, ingest: IngestSettings,
          video: VideoSettings | None = None) -> str:
    """The type of a file from its first KiB, and its size checked against the limit
    for that type, before anything else is read: documents are parsed in memory
    (``ingest.max_file_bytes``), videos and recordings are streamed
    (``video.max_file_bytes``)."""
    mime = sniff(name, blob.head() if blob.size else b"")
    if mime in MEDIA_MIMES:
        blob.check_size((video or VideoSettings()).max_file_bytes, "video.max_file_bytes")
    else:
        blob.check_size(ingest.max_file_bytes, "ingest.max_file_bytes")
    return mime


def open_document(
    name: str,
    data: bytes | Blob,
    *,
    ingest: IngestSettings,
    ocr: OcrEngine | None,
    render_pages: bool,
    video: VideoSettings | None = None,
    transcriber: Transcriber | None = None,
) -> DocumentReader:
    """Validate a file and return a reader that yields its pages one by one.

    Everything cheap is checked here (size, type, decodability, page count, password),
    so a bad file fails before any rendering or OCR; the job runner can then show
    per-page progress over ``reader.page_count`` while iterating ``reader.iter_pages()``.
    """
    blob = as_blob(name, data)
    mime = admit(name, blob, ingest=ingest, video=video)
    streamed = mime in MEDIA_MIMES
    request = LoadRequest(
        name=name, data=b"" if streamed else blob.read(), mime=mime, ingest=ingest, ocr=ocr,
        render_pages=render_pages, video=video, transcriber=transcriber,
        blob=blob if streamed else None,
    )
    return guarded(name, lambda: READERS[reader_kind(mime)](request))


def load_document(
    name: str,
    data: bytes | Blob,
    *,
    ingest: IngestSettings,
    ocr: OcrEngine | None,
    render_pages: bool,
    video: VideoSettings | None = None,
    transcriber: Transcriber | None = None,
) -> LoadedDocument:
    """Load every page of a file: text layer or file text, images, OCR where needed.

    ``render_pages`` renders every PDF page (for page-image points); otherwise only pages
    that need OCR are rendered. Raises :class:`~rag.errors.UnsupportedFile`,
    :class:`~rag.errors.FileRejected` or :class:`~rag.errors.LimitExceeded`.
    """
    reader = open_document(name, data, ingest=ingest, ocr=ocr, render_pages=render_pages,
                           video=video, transcriber=transcriber)
    return guarded(name, reader.load)


__all__ = [
    "READERS",
    "SUPPORTED",
    "DocumentReader",
    "LoadRequest",
    "LoadedDocument",
    "LoadedPage",
    "admit",
    "PageKind",
    "decode_image",
    "decode_text",
    "load_document",
    "open_document",
    "sniff",
    "title_of",
]
