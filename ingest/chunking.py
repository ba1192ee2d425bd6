"""Pages to chunks: text split with offsets, OCR boxes attached, visual points added.

:func:`split_text` wraps LangChain's RecursiveCharacterTextSplitter (paragraphs, then
lines, then words; Markdown headings and fences first for Markdown) and returns where
every chunk sits in the page text. Those offsets are what lets a text chunk of an OCR'd
page carry exactly the boxes of the lines it quotes, so a citation can point at a
region of the page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from ingest.hashing import VISUAL_CHUNK
from ingest.loaders.base import LoadedDocument, LoadedPage
from ingest.transcript import frame_at, transcript_windows
from rag.errors import ConfigError
from rag.ocr.base import ocr_layout
from rag.payload import media_key
from rag.settings import ChunkSettings
from rag.types import Chunk, Modality, OcrBox

MARKDOWN_MIMES = frozenset({"text/markdown"})

Span = tuple[int, int, str]


@lru_cache(maxsize=32)
def _splitter(size: int, overlap: int, markdown: bool) -> RecursiveCharacterTextSplitter:
    """Splitters are immutable once built; caching avoids recompiling separators per page.

    Whitespace is kept (``strip_whitespace=False``): unstripped chunks are exact,
    contiguous pieces of the text, which is what makes their offsets recoverable.
    """
    if size < 1:
        raise ConfigError(f"chunking.size must be at least 1, got {size}")
    if overlap < 0 or overlap >= size:
        raise ConfigError(
            f"chunking.overlap must be at least 0 and smaller than chunking.size "
            f"({size}), got {overlap}"
        )
    if markdown:
        return RecursiveCharacterTextSplitter.from_language(
            Language.MARKDOWN, chunk_size=size, chunk_overlap=overlap, strip_whitespace=False
        )
    return RecursiveCharacterTextSplitter(
        chunk_size=size, chunk_overlap=overlap, strip_whitespace=False
    )


def split_text(text: str, size: int, overlap: int, markdown: bool = False) -> list[Span]:
    """Chunks of ``text`` as ``(start, end, chunk)`` with ``text[start:end] == chunk``.

    Every chunk is stripped and at most ``size`` characters, consecutive chunks share at
    most ``overlap`` characters, and together they cover all non-whitespace text. Pure
    and deterministic.

    LangChain's own ``start_index`` is a ``str.find`` from a guessed position, which
    points at the wrong occurrence of repeated text (table rules, repeated headers).
    Here the offsets are derived from what the splitter guarantees instead: its
    unstripped chunks tile the text, each next chunk starting inside the last
    ``overlap`` characters of the previous one (or right after it).
    """
    if not text or text.isspace():
        return []
    raw = [c for c in _splitter(size, overlap, markdown).split_text(text) if c]
    starts = _tile(text, raw, overlap)
    out: list[Span] = []
    for start, chunk in zip(starts, raw, strict=True):
        lead = len(chunk) - len(chunk.lstrip())
        stripped = chunk.strip()
        if not stripped:
            continue
        begin = start + lead
        end = begin + len(stripped)
        if out and out[-1][0] <= begin and end <= out[-1][1]:
            continue  # only whitespace was new: nothing the previous chunk lacks
        out.append((begin, end, stripped))
    return out


def _tile(text: str, chunks: list[str], overlap: int) -> list[int]:
    """Start offsets that lay ``chunks`` over ``text`` end to end, each overlapping the
    previous one by ``k <= overlap`` characters and the last ending at ``len(text)``.

    Usually only one ``k`` fits; periodic text ("- - - -") can fit several, so this is a
    depth-first search (largest overlap first) that backtracks out of dead ends.
    """

    def options(index: int, prev_start: int, prev_len: int) -> list[int]:
        chunk = chunks[index]
        prev_end = prev_start + prev_len
        top = min(overlap, prev_len, len(chunk) - 1)
        return [
            prev_end - k for k in range(top, -1, -1) if text.startswith(chunk, prev_end - k)
        ]

    if not chunks:
        return []
    if not text.startswith(chunks[0]):
        return _find_each(text, chunks)
    starts = [0]
    stack: list[list[int]] = [[]]  # untried alternatives for each placed chunk
    budget = 20 * len(chunks) + 1000  # backtracking is rare; never let it run away
    while budget > 0:
        budget -= 1
        index = len(starts)
        if index == len(chunks):
            if starts[-1] + len(chunks[-1]) == len(text):
                return starts
            choices: list[int] = []
        else:
            choices = options(index, starts[-1], len(chunks[index - 1]))
        if choices:
            starts.append(choices[0])
            stack.append(choices[1:])
            continue
        # Dead end: back up to the nearest chunk with an untried placement.
        while stack and not stack[-1]:
            stack.pop()
            starts.pop()
        if not stack:
            return _find_each(text, chunks)  # pragma: no cover - splitter broke its contract
        starts[-1] = stack[-1].pop(0)
    return _find_each(text, chunks)  # pragma: no cover


def _find_each(text: str, chunks: list[str]) -> list[int]:
    """Best effort when the chunks do not tile the text (a splitter behaving differently)."""
    starts: list[int] = []
    cursor = 0
    for chunk in chunks:
        found = text.find(chunk, cursor)
        if found < 0:
            found = max(0, text.find(chunk))
        starts.append(found)
        cursor = found
    return starts


def _find_loose(text: str, needle: str, cursor: int) -> tuple[int, int] | None:
    """Span of ``needle`` in ``text`` at or after ``cursor``, any whitespace (or none)
    between its words; text layers space words differently depending on the parser."""
    words = needle.split()
    if not words:
        return None
    pattern = re.compile(r"\s*".join(re.escape(w) for w in words))
    match = pattern.search(text, cursor)
    return (match.start(), match.end()) if match else None


def line_spans(page: LoadedPage) -> list[tuple[int, int]]:
    """Character span of each box's line of ``page`` within ``page.text``; ``(-1, -1)``
    for a line not found.

    Loaders build OCR text with :func:`~rag.ocr.base.ocr_layout`, so its spans are
    exact; for text assembled some other way (a PDF text layer, whose boxes pdfium
    reads while pypdf reads the text) each line is looked up in order, exactly first,
    then ignoring whitespace, from the end of the previous line or else anywhere.
    """
    text, spans = ocr_layout(page.boxes)
    if text == page.text:
        return spans
    found: list[tuple[int, int]] = []
    cursor = 0
    for box in page.boxes:
        span: tuple[int, int] | None = None
        if box.text:
            start = page.text.find(box.text, cursor)
            if start >= 0:
                span = (start, start + len(box.text))
            else:
                span = _find_loose(page.text, box.text, cursor) or _find_loose(
                    page.text, box.text, 0
                )
        if span is None:
            found.append((-1, -1))
            continue
        found.append(span)
        cursor = span[1]
    return found


def boxes_in(
    boxes: Sequence[OcrBox], spans: Sequence[tuple[int, int]], start: int, end: int
) -> list[OcrBox]:
    """The boxes whose line text overlaps the character range ``[start, end)``."""
    return [
        box
        for box, (s, e) in zip(boxes, spans, strict=True)
        if s >= 0 and s < end and e > start
    ]


def _truncate(text: str, size: int) -> tuple[int, int]:
    """Span of the first ``size`` characters of the stripped text, ending on a word."""
    start = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    if end - start <= size:
        return start, end
    cut = start + size
    space = text.rfind(" ", start, cut + 1)
    newline = text.rfind("\n", start, cut + 1)
    boundary = max(space, newline)
    if boundary > start + size // 2:
        cut = boundary
    return start, len(text[:cut].rstrip())


def chunk_page(
    page: LoadedPage,
    *,
    mime: str,
    title: str,
    doc_id: str,
    source: str,
    chunking: ChunkSettings,
    visual_points: bool,
    metadata: dict[str, Any],
    tenant: str | None,
    page_media: bool = True,
    windows: tuple[float, float] = (30.0, 5.0),
) -> list[Chunk]:
    """Chunks of one page (see :func:`chunk_document`); lets the runner stream pages.
    ``windows`` are the transcript windows' length and overlap in seconds."""
    if page.kind == "transcript":
        return _transcript_chunks(page, mime=mime, title=title, doc_id=doc_id, source=source,
                                  metadata=metadata, tenant=tenant, windows=windows)
    stored = page.image is not None and (page_media or page.kind in ("image", "frame"))
    media = media_key(doc_id, page.page) if stored else None
    spans = line_spans(page) if page.boxes else []

    def make(
        modality: Modality, number: int, text: str, boxes: list[OcrBox], image: Any
    ) -> Chunk:
        return Chunk(
            doc_id=doc_id,
            source=source,
            mime=mime,
            modality=modality,
            page=page.page,
            chunk=number,
            text=text,
            title=title,
            boxes=boxes,
            media=media,
            metadata=dict(metadata),
            tenant=tenant,
            image=image,
            start=page.start,
            end=page.end,
        )

    pieces = split_text(
        page.text, chunking.size, chunking.overlap, markdown=mime in MARKDOWN_MIMES
    )
    text_chunks = [
        make("text", i, chunk, boxes_in(page.boxes, spans, start, end), None)
        for i, (start, end, chunk) in enumerate(pieces)
    ]
    out: list[Chunk] = []
    if page.kind == "frame":  # a keyframe: a picture with a time range, all "frame"
        for c in text_chunks:
            c.modality = "frame"
    if page.kind in ("image", "frame"):
        if page.image is not None:
            out.append(make("image" if page.kind == "image" else "frame", VISUAL_CHUNK,
                            page.text.strip(), list(page.boxes), page.image))
        # A short caption-like text is already the picture point's text; only longer
        # text (a screenshot of a document) also gets its own text chunks.
        if len(text_chunks) > 1:
            out.extend(text_chunks)
        return out
    out.extend(text_chunks)
    if page.kind == "page" and visual_points and page.image is not None:
        start, end = _truncate(page.text, chunking.size)
        out.append(
            make(
                "page",
                VISUAL_CHUNK,
                page.text[start:end],
                boxes_in(page.boxes, spans, start, end),
                page.image,
            )
        )
    return out


def _transcript_chunks(page: LoadedPage, *, mime: str, title: str, doc_id: str, source: str,
                       metadata: dict[str, Any], tenant: str | None,
                       windows: tuple[float, float]) -> list[Chunk]:
    """Windows of speech (:mod:`ingest.transcript`), each showing the keyframe that was
    on screen when it began (a video's; none for a recording)."""
    out: list[Chunk] = []
    for i, w in enumerate(transcript_windows(page.segments, *windows)):
        frame = frame_at(page.frames, w.start)
        out.append(Chunk(
            doc_id=doc_id, source=source, mime=mime, modality="transcript", page=page.page,
            chunk=i, text=w.text, title=title,
            media=media_key(doc_id, frame) if frame is not None else None,
            metadata=dict(metadata), tenant=tenant, start=w.start, end=w.end,
        ))
    return out


def chunk_document(
    doc: LoadedDocument,
    *,
    doc_id: str,
    source: str,
    chunking: ChunkSettings,
    visual_points: bool,
    metadata: dict[str, Any],
    tenant: str | None,
    page_media: bool = True,
) -> list[Chunk]:
    """Every chunk of a loaded document, page by page.

    Per page: text chunks numbered 0..n-1; for a picture, always one ``image`` point
    (chunk -1) with all its OCR text and boxes, plus text chunks when that text is longer
    than one chunk; for a rendered PDF page, one ``page`` point (chunk -1) when
    ``visual_points``. Text chunks of a page that has an image share its ``media`` key
    so a citation can show the region its boxes mark; with ``page_media`` false
    (``ingest.store_page_images: false``) rendered PDF pages are not stored, so their
    chunks carry no media key (pictures always keep theirs).
    """
    out: list[Chunk] = []
    for page in doc.pages:
        out.extend(
            chunk_page(
                page,
                mime=doc.mime,
                title=doc.title,
                doc_id=doc_id,
                source=source,
                chunking=chunking,
                visual_points=visual_points,
                metadata=metadata,
                tenant=tenant,
                page_media=page_media,
            )
        )
    return out
