"""The version of the text pipeline a document was written with, part by part.

A document's record keeps a short fingerprint of each part that shaped its points
(:func:`text_pipeline`): OCR and its post-processing (only for documents that were
OCR'd), chunking, and each encoder. The next ingest compares them with the running
configuration and rebuilds a document whose parts changed, even when its bytes did not
(:func:`stale_parts`), saying which parts; ``mmrag ingest --rebuild`` rebuilds regardless.

A fingerprint covers what changes the stored text or vectors and nothing else: the OCR
runtime, threads or device, batch sizes and the encoders' runtime give the same text
and (within float noise) the same vectors, so changing them rebuilds nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rag.ocr import OCR_TEXT_VERSION
from rag.settings import Settings

#: Bumped when chunking itself (ingest/chunking.py, the point payloads) changes output.
CHUNKING_VERSION = 1

OCR = "ocr"
CHUNKING = "chunking"
TEXT = "text"
CLIP = "clip"
BM25 = "bm25"

# Records written before versions existed: pictures and PDFs (scanned pages) may have
# been OCR'd.
_LEGACY_OCR_MIMES = ("image/", "application/pdf")


def _fingerprint(value: Any) -> str:
    raw = json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:12]


def text_pipeline(settings: Settings, ocr_used: bool) -> dict[str, str]:
    """Fingerprints of the parts that shape a document's points under ``settings``."""
    parts: dict[str, str] = {}
    if ocr_used and settings.ocr.enabled:
        o = settings.ocr
        parts[OCR] = _fingerprint({
            "version": OCR_TEXT_VERSION, "backend": o.backend,
            "min_confidence": o.min_confidence, "max_side": o.max_side,
            "enlarge_below": o.enlarge_below, "stretch_x": o.stretch_x,
            "blank_range": o.blank_range,
        })
    t = settings.text
    parts[CHUNKING] = _fingerprint({
        "version": CHUNKING_VERSION, "chunking": settings.chunking.model_dump(),
        "contextual_header": t.contextual_header, "context_chars": t.context_chars,
        "min_text_chars": settings.ingest.min_text_chars,
    })
    if t.enabled:
        parts[TEXT] = _fingerprint({"backend": t.backend, "model": t.model})
    c = settings.clip
    if c.enabled:
        parts[CLIP] = _fingerprint({"backend": c.backend, "model": c.model,
                                    "pretrained": c.pretrained, "checkpoint": c.checkpoint})
    if settings.sparse.enabled:
        parts[BM25] = _fingerprint({"backend": settings.sparse.backend,
                                    "language": settings.sparse.language})
    return parts


def stale_parts(stored: dict[str, str] | None, mime: str, settings: Settings) -> list[str]:
    """The parts of a stored document that the running configuration would write
    differently. ``stored`` is what its record says (None: written before versions
    existed, when every part counts as changed, OCR only where it may have run)."""
    if stored is None:
        # Before versions, only OCR is known to have changed since (word boundaries);
        # the rest is assumed unchanged rather than rebuilding every text file.
        ocr_possible = mime.startswith(_LEGACY_OCR_MIMES) and settings.ocr.enabled
        return [OCR] if ocr_possible else []
    current = text_pipeline(settings, ocr_used=OCR in stored)
    return [part for part in (OCR, CHUNKING, TEXT, CLIP, BM25)
            if current.get(part) != stored.get(part)]


def describe(parts: list[str]) -> str:
    """'ocr and chunking changed' for a report."""
    if not parts:
        return ""
    names = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{names} changed"
