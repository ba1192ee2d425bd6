"""Chunks to points: the vectors of each path (the payload layout is rag.payload's)."""

from __future__ import annotations

import re
from pathlib import PurePath

from ingest.hashing import point_id
from rag.encoders import Encoders
from rag.payload import LEAD_CHUNK, chunk_payload
from rag.types import BM25, CLIP, TEXT, Chunk, Point, Vector


def title_words(title: str) -> str:
    """``latency_alert_rule.tiff`` -> ``latency alert rule``: file names as words, so the
    tokenizers see terms instead of one opaque token."""
    stem = PurePath(title).stem
    return " ".join(re.sub(r"[_\-.]+|(?<=[a-z])(?=[A-Z])", " ", stem).split())


def document_lead(text: str, max_chars: int) -> str:
    """The opening of a document, whitespace collapsed, at most ``max_chars`` and cut at
    a word: what names and sums it up (a title, a man page's NAME line, a screenshot's
    window title). Empty when ``max_chars`` < 1."""
    flat = " ".join(text.split())
    if max_chars < 1 or not flat:
        return ""
    if len(flat) <= max_chars:
        return flat
    cut = flat.rfind(" ", 0, max_chars + 1)
    return flat[: cut if cut > max_chars // 2 else max_chars]


def _openings(chunks: list[Chunk]) -> dict[str, Chunk]:
    """Each document's earliest chunk with text, by doc id: the first page's picture or
    page point (all of its text) before that page's first text chunk. A lead point is
    never an opening (it is made from one)."""
    first: dict[str, Chunk] = {}
    for c in chunks:
        best = first.get(c.doc_id)
        if c.chunk != LEAD_CHUNK and c.text.strip() and (
            best is None or (c.page, c.chunk) < (best.page, best.chunk)
        ):
            first[c.doc_id] = c
    return first


def document_leads(chunks: list[Chunk], max_chars: int) -> dict[str, str]:
    """The lead (:func:`document_lead`) of each document among ``chunks``, by doc id,
    from its opening chunk. ``chunks`` must hold whole documents."""
    if max_chars < 1:
        return {}
    return {doc: document_lead(c.text, max_chars) for doc, c in _openings(chunks).items()}


def lead_chunk(chunks: list[Chunk], max_chars: int) -> Chunk | None:
    """The lead point of the one document in ``chunks`` (``chunking.lead_chars``): a text
    chunk holding only its lead (:func:`document_lead`), on the page the lead comes from
    and showing that page's media; ``None`` when off or when the document has no text."""
    openings = _openings(chunks) if max_chars > 0 else {}
    if not openings:
        return None
    (first,) = openings.values()
    return Chunk(doc_id=first.doc_id, source=first.source, mime=first.mime,
                 modality="text", page=first.page, chunk=LEAD_CHUNK,
                 text=document_lead(first.text, max_chars), title=first.title,
                 media=first.media, metadata=first.metadata, tenant=first.tenant,
                 start=first.start, end=first.end)


def embedding_text(c: Chunk, contextual_header: bool, lead: str = "") -> str:
    """The text the ``text``/``bm25`` vectors see. With a contextual header the file name
    leads, so a chunk that never names its document still matches questions that do;
    ``lead`` (the document's opening, see :func:`document_lead`) follows it on chunks that
    do not already start with it, so an option deep in a long page or a screenshot still
    carries the name of the tool it belongs to."""
    body = c.text.strip()
    if not body:
        return ""
    parts = [title_words(c.title)] if contextual_header and c.title else []
    if lead and not " ".join(body.split()).startswith(lead[:60]):
        parts.append(lead)
    header = "\n".join(p for p in parts if p)
    return f"{header}\n\n{body}" if header else body


def embed_chunks(
    chunks: list[Chunk],
    encoders: Encoders,
    contextual_header: bool,
    leads: dict[str, str] | None = None,
) -> list[Point]:
    """Vectors for every path a chunk can have: ``clip`` from the image tower for pictures
    and pages and from the text tower for text; ``text``/``bm25`` from its text (OCR text
    for pictures), headed as :func:`embedding_text` says (``leads`` by doc id). A chunk
    without text gets no text vectors."""
    vectors: list[dict[str, Vector]] = [{} for _ in chunks]
    leads = leads or {}
    texts = [embedding_text(c, contextual_header, leads.get(c.doc_id, "")) for c in chunks]
    with_text = [i for i, t in enumerate(texts) if t]
    if encoders.text is not None and with_text:
        dense = encoders.text.encode([texts[i] for i in with_text])
        for i, row in zip(with_text, dense, strict=True):
            vectors[i][TEXT] = row.tolist()
    if encoders.sparse is not None and with_text:
        for i, sv in zip(
            with_text, encoders.sparse.encode_documents([texts[i] for i in with_text]), strict=True
        ):
            if sv.indices:
                vectors[i][BM25] = sv
    if encoders.clip is not None:
        visual = [i for i, c in enumerate(chunks) if c.image is not None and c.chunk < 0]
        textual = [i for i, c in enumerate(chunks)
                   if (c.chunk >= 0 or c.chunk == LEAD_CHUNK) and c.text.strip()]
        if visual:
            imgs = encoders.clip.encode_images([chunks[i].image for i in visual])  # type: ignore[misc]
            for i, row in zip(visual, imgs, strict=True):
                vectors[i][CLIP] = row.tolist()
        if textual:
            txt = encoders.clip.encode_texts([chunks[i].text for i in textual])
            for i, row in zip(textual, txt, strict=True):
                vectors[i][CLIP] = row.tolist()
    return [
        Point(id=point_id(c.doc_id, c.page, c.chunk), vectors=v, payload=chunk_payload(c))
        for c, v in zip(chunks, vectors, strict=True)
    ]
