"""Chunks to points: the vectors of each path (the payload layout is rag.payload's)."""

from __future__ import annotations

import re
from pathlib import PurePath

from ingest.hashing import point_id
from rag.encoders import Encoders
from rag.payload import chunk_payload
from rag.types import BM25, CLIP, TEXT, Chunk, Point, Vector


def title_words(title: str) -> str:
    """``latency_alert_rule.tiff`` -> ``latency alert rule``: file names as words, so the
    tokenizers see terms instead of one opaque token."""
    stem = PurePath(title).stem
    return " ".join(re.sub(r"[_\-.]+|(?<=[a-z])(?=[A-Z])", " ", stem).split())


def embedding_text(c: Chunk, contextual_header: bool) -> str:
    """The text the ``text``/``bm25`` vectors see. With a contextual header the file name
    leads, so a chunk that never names its document still matches questions that do."""
    body = c.text.strip()
    if not body:
        return ""
    header = title_words(c.title) if contextual_header and c.title else ""
    return f"{header}\n\n{body}" if header else body


def embed_chunks(chunks: list[Chunk], encoders: Encoders, contextual_header: bool) -> list[Point]:
    """Vectors for every path a chunk can have: ``clip`` from the image tower for pictures
    and pages and from the text tower for text; ``text``/``bm25`` from its text (OCR text
    for pictures). A chunk without text gets no text vectors."""
    vectors: list[dict[str, Vector]] = [{} for _ in chunks]
    texts = [embedding_text(c, contextual_header) for c in chunks]
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
        textual = [i for i, c in enumerate(chunks) if c.chunk >= 0 and c.text.strip()]
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
