"""The version of the text pipeline a document was written with, part by part.

A document's record keeps a short fingerprint of each part that shaped its points
(:func:`text_pipeline`): OCR and its post-processing (for the kinds OCR can read:
pictures, PDFs, videos), keyframe selection (videos), transcription and its windows
(videos, audio), chunking, and each encoder. The next ingest compares them with the running
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
FRAMES = "frames"
SPEECH = "speech"
PARTS = (OCR, FRAMES, SPEECH, CHUNKING, TEXT, CLIP, BM25)
#: What a rebuild that no part asked for says (``mmrag ingest --rebuild``).
FORCED = "rebuild requested"

# Kinds whose text OCR can shape: pictures, PDFs (scanned pages) and videos (keyframes).
# They carry the OCR fingerprint whether or not OCR found anything in them, so an OCR
# change, or turning OCR on, rebuilds them all (a digital PDF just reads its text layer
# again); text files never carry it.
_OCR_KINDS = ("image/", "application/pdf", "video/")
# What records written before versions existed were written with.
_LEGACY = {OCR: 1, CHUNKING: 1}


def ocr_applies(mime: str) -> bool:
    return mime.startswith(_OCR_KINDS)


def _timed(mime: str) -> tuple[bool, bool]:
    """(has keyframes, has speech) for a ``mime`` document."""
    return mime.startswith("video/"), mime.startswith(("video/", "audio/"))


def _fingerprint(value: Any) -> str:
    raw = json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:12]


def text_pipeline(settings: Settings, mime: str) -> dict[str, str]:
    """Fingerprints of the parts that shape the points of a ``mime`` document under
    ``settings`` (what its record keeps)."""
    parts: dict[str, str] = {}
    if ocr_applies(mime):
        o = settings.ocr
        parts[OCR] = _fingerprint({
            "version": OCR_TEXT_VERSION, "backend": o.backend,
            "min_confidence": o.min_confidence, "max_side": o.max_side,
            "enlarge_below": o.enlarge_below, "stretch_x": o.stretch_x,
            "blank_range": o.blank_range, "rec_batch_size": o.rec_batch_size,
            "word_repair": o.word_repair,
            "render_dpi": settings.ingest.render_dpi,
        }) if o.enabled else "off"
    frames, speech = _timed(mime)
    if frames:  # which frames become keyframes (what is shown)
        v = settings.video
        parts[FRAMES] = _fingerprint({
            "max_interval_s": v.max_interval_s, "max_frames": v.max_frames,
            "scene_threshold": v.scene_threshold,
            "duplicate_threshold": v.duplicate_threshold,
            "analysis_side": v.analysis_side, "sample_interval_s": v.sample_interval_s,
        })
    if speech:  # what was said, and its windows
        tr = settings.transcribe
        parts[SPEECH] = _fingerprint({
            "backend": tr.backend, "model": tr.model, "language": tr.language,
            "compute_type": tr.compute_type, "window_s": tr.window_s,
            "overlap_s": tr.overlap_s,
        }) if tr.enabled else "off"
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
    """The parts of a stored ``mime`` document that the running configuration would write
    differently, given the fingerprints its record keeps (``stored``).

    A record written before versions existed (``stored`` is None) is taken to match the
    running settings, written by the first OCR and chunking versions: only a part whose
    version moved on since counts as changed (OCR only for kinds it applies to)."""
    if stored is None:
        stale = []
        if ocr_applies(mime) and settings.ocr.enabled and _LEGACY[OCR] != OCR_TEXT_VERSION:
            stale.append(OCR)
        if _LEGACY[CHUNKING] != CHUNKING_VERSION:
            stale.append(CHUNKING)
        return stale
    current = text_pipeline(settings, mime)
    return [part for part in PARTS if current.get(part) != stored.get(part)]


def describe(parts: list[str]) -> str:
    """'ocr and chunking changed' for a report."""
    if not parts:
        return FORCED
    names = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{names} changed"
