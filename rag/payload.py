"""The point payload schema: the one module that knows payload keys and media keys.

Ingest writes payloads with :func:`chunk_payload`, stores read them back with
:func:`hit_from_payload`, filters address them through the key constants, and media
keys are built and parsed here (:func:`media_key`, :func:`parse_media_key`, and the
fixed thumbnail sides). A change to the stored layout is a change to this file alone.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from rag.types import Chunk, Hit, PayloadBoxes, RecordInfo, Vector, path_prefixes

# Payload keys the pipeline writes and filters read.
DOC_ID = "doc_id"
SOURCE = "source"
PATH_PREFIXES = "path_prefixes"
MIME = "mime"
MODALITY = "modality"
PAGE = "page"
CHUNK = "chunk"
TITLE = "title"
TEXT = "text"
BOXES = "boxes"
MEDIA = "media"
META = "meta"
TENANT = "tenant"
# Seconds on a video's or recording's timeline (frames, transcripts); absent elsewhere.
START = "start"
END = "end"

# The modality of a document's completion record: a vector-less point written after all
# of the document's points (see pipeline/runner.py); never returned by a vector search.
RECORD = "record"
POINTS = "points"
# A record's state: its document is being written, is complete, or is being removed.
# Records written before states existed have none and count as complete.
STATE = "state"
WRITING = "writing"
COMPLETE = "complete"
DELETING = "deleting"
WRITTEN_AT = "written_at"
PIPELINE = "pipeline"
# Chunk number of a document's record: pages use 0.., their visual point -1.
RECORD_CHUNK = -2

# Point ids are UUIDv5 of ``doc_id/page/chunk`` in this namespace (ingest/hashing.py).
# Fixed forever: changing it would give every stored point a new id, so a re-ingest
# would duplicate every collection instead of overwriting it.
POINT_NAMESPACE = uuid.UUID("6f1d3c1e-8b7a-5c4e-9a52-3d0f6e2b7c41")


def record_point_id(doc_id: str) -> str:
    """The id of a document's record (page 0, :data:`RECORD_CHUNK`)."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{doc_id}/0/{RECORD_CHUNK}"))
# Chunk number of a document's lead point (``chunking.lead_chars``): its opening alone.
LEAD_CHUNK = -3

# Keys worth a keyword payload index: every filter field except user metadata.
INDEXED_KEYS: tuple[str, ...] = (MODALITY, SOURCE, PATH_PREFIXES, DOC_ID, TENANT)

_MEDIA_KEY = re.compile(r"^([0-9a-f]{8,64})-p(\d{1,6})$")


_ORIGINAL_KEY = re.compile(r"^([0-9a-f]{8,64})-orig$")


def original_key(doc_id: str) -> str:
    """The key of a video's or recording's original file in the media store: served with
    HTTP Range so a citation plays its moment."""
    return f"{doc_id}-orig"


def parse_original_key(key: str) -> str | None:
    """The doc id of an original's key, or ``None`` when ``key`` is not one."""
    match = _ORIGINAL_KEY.match(key) if isinstance(key, str) else None
    return match.group(1) if match else None


def media_doc_id(key: str) -> str | None:
    """The document a media key (picture, page, keyframe or original) belongs to."""
    parsed = parse_media_key(key)
    return parsed[0] if parsed is not None else parse_original_key(key)


def media_key(doc_id: str, page: int) -> str:
    """The stable key of a document page's image: content-derived, so re-ingesting the
    same bytes names the same file, and shared by every collection storing them."""
    return f"{doc_id}-p{page}"


def parse_media_key(key: str) -> tuple[str, int] | None:
    """``(doc_id, page)`` of a media key, or ``None`` when ``key`` is not one."""
    match = _MEDIA_KEY.match(key) if isinstance(key, str) else None
    if match is None:
        return None
    return match.group(1), int(match.group(2))


#: The longest sides media thumbnails are made at (``/v1/media/{key}?size=``): 64 for
#: icons, 384 for the chat page's citation cards (it asks 360), 768 for MCP images; 2048
#: is the side pictures are stored at. A fixed few, so a picture has a bounded number of
#: cached thumbnails whatever sizes are asked.
THUMB_SIDES: tuple[int, ...] = (64, 128, 256, 384, 512, 768, 1024, 2048)


def thumb_side(requested: int) -> int:
    """The fixed thumbnail side serving a requested one: the next one up, at most the
    largest (a thumbnail is never smaller than asked, unless asked past the cap)."""
    return next((s for s in THUMB_SIDES if s >= requested), THUMB_SIDES[-1])


def chunk_payload(c: Chunk) -> dict[str, Any]:
    """What a point stores about its chunk (never the image itself)."""
    payload: dict[str, Any] = {
        DOC_ID: c.doc_id,
        SOURCE: c.source,
        PATH_PREFIXES: path_prefixes(c.source),
        MIME: c.mime,
        MODALITY: c.modality,
        PAGE: c.page,
        CHUNK: c.chunk,
        TITLE: c.title,
        TEXT: c.text,
        BOXES: [b.to_payload() for b in c.boxes],
        MEDIA: c.media,
        META: c.metadata,
    }
    if c.tenant is not None:
        payload[TENANT] = c.tenant
    if c.start is not None:
        payload[START] = float(c.start)
        payload[END] = float(c.end if c.end is not None else c.start)
    return payload


def _seconds(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):  # damaged outside mmrag: no time rather than a crash
        return None


def hit_from_payload(
    point_id: str,
    score: float,
    payload: dict[str, Any],
    vectors: dict[str, Vector] | None = None,
) -> Hit:
    """A retrieved point as our :class:`~rag.types.Hit`; missing keys get defaults, so
    points written by an older layout still read."""
    return Hit(
        id=str(point_id),
        score=float(score),
        source=str(payload.get(SOURCE, "")),
        page=int(payload.get(PAGE, 0)),
        modality=str(payload.get(MODALITY, "text")),
        text=str(payload.get(TEXT, "")),
        chunk=int(payload.get(CHUNK, 0)),
        doc_id=str(payload.get(DOC_ID, "")),
        mime=str(payload.get(MIME, "")),
        boxes=PayloadBoxes(payload.get(BOXES) or []),
        media=payload.get(MEDIA),
        metadata=dict(payload.get(META) or {}),
        vectors=dict(vectors or {}),
        record=_record_info(payload) if payload.get(MODALITY) == RECORD else None,
        start=_seconds(payload.get(START)),
        end=_seconds(payload.get(END)),
    )


def _record_info(payload: dict[str, Any]) -> RecordInfo:
    try:
        points = int(payload.get(POINTS, 0))
        written_at = float(payload.get(WRITTEN_AT, 0.0))
    except (TypeError, ValueError):  # a record damaged outside mmrag: never complete
        return RecordInfo(-1, DELETING, 0.0)
    raw = payload.get(PIPELINE)
    pipeline = ({str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else None)
    return RecordInfo(points, str(payload.get(STATE, COMPLETE)), written_at, pipeline)


def record_payload(doc_id: str, source: str, mime: str, points: int, tenant: str | None,
                   state: str = COMPLETE, written_at: float = 0.0,
                   pipeline: dict[str, str] | None = None) -> dict[str, Any]:
    """The payload of a document's record: ``state`` is ``complete`` only once all of the
    document's ``points`` are stored (see ``pipeline/runner.py`` for the protocol)."""
    payload: dict[str, Any] = {
        DOC_ID: doc_id,
        SOURCE: source,
        PATH_PREFIXES: path_prefixes(source),
        MIME: mime,
        MODALITY: RECORD,
        PAGE: 0,
        CHUNK: RECORD_CHUNK,
        POINTS: points,
        STATE: state,
        WRITTEN_AT: written_at,
    }
    if pipeline is not None:
        payload[PIPELINE] = dict(pipeline)
    if tenant is not None:
        payload[TENANT] = tenant
    return payload
