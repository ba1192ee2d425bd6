"""The data types that cross module boundaries.

Library types (Qdrant points, PIL images inside encoders, LangChain documents) stay inside
the adapter that uses them; everything else speaks these.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from PIL import Image

# ``frame``: a video keyframe (a picture with a time range); ``transcript``: a window of
# what was said in a video or recording.
Modality = Literal["text", "image", "page", "frame", "transcript"]
MODALITIES: tuple[str, ...] = ("text", "image", "page", "frame", "transcript")
#: Modalities whose points are pictures (the VLM is shown their image).
IMAGE_MODALITIES: frozenset[str] = frozenset({"image", "page", "frame"})

# Named vectors of every point.
CLIP = "clip"
TEXT = "text"
BM25 = "bm25"


@dataclass(frozen=True)
class SparseVector:
    indices: tuple[int, ...]
    values: tuple[float, ...]


Vector = list[float] | SparseVector


@dataclass(frozen=True)
class OcrBox:
    """One OCR line. ``box`` is ``[x0, y0, x1, y1]`` normalised to 0..1 of the image/page.

    ``words``: each word of ``text`` with its own box, where the OCR backend knows where
    its characters were (RapidOCR does); empty otherwise (text layers, older payloads).
    """

    text: str
    box: tuple[float, float, float, float]
    confidence: float
    words: tuple[tuple[str, tuple[float, float, float, float]], ...] = ()

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text, "box": list(self.box), "confidence": self.confidence
        }
        if self.words:  # only where known: payloads of text layers stay as they were
            out["words"] = [[w, [round(v, 4) for v in b]] for w, b in self.words]
        return out

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> OcrBox:
        x0, y0, x1, y1 = (float(v) for v in data["box"])
        words = tuple(
            (str(w), (float(b[0]), float(b[1]), float(b[2]), float(b[3])))
            for w, b in data.get("words") or ()
        )
        return cls(str(data["text"]), (x0, y0, x1, y1), float(data["confidence"]), words)


class PayloadBoxes(Sequence[OcrBox]):
    """A stored hit's boxes, converted from the payload on first use.

    A search reads every prefetched candidate (50 by default) but shows only the final
    few; a text-layer PDF chunk carries one box per line, so converting all of them up
    front was most of the store's share of a search.
    """

    __slots__ = ("_raw", "_boxes", "_json")

    def __init__(self, raw: Sequence[dict[str, Any]]) -> None:
        self._raw = raw
        self._boxes: list[OcrBox] | None = None
        self._json: list[dict[str, Any]] | None = None

    def to_payload(self) -> list[dict[str, Any]]:
        """The boxes as :meth:`OcrBox.to_payload` gives them, made once: a cached point
        (rag/store/point_cache.py) is shown again and again. Read-only."""
        if self._json is None:
            self._json = [b.to_payload() for b in self._items()]
        return list(self._json)

    def _items(self) -> list[OcrBox]:
        if self._boxes is None:
            self._boxes = [OcrBox.from_payload(b) for b in self._raw]
            self._raw = ()  # converted: the payload's copy is not needed again
        return self._boxes

    def __len__(self) -> int:
        return len(self._raw) if self._boxes is None else len(self._boxes)

    def __getitem__(self, index: Any) -> Any:
        return self._items()[index]

    def __iter__(self) -> Iterator[OcrBox]:
        return iter(self._items())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return repr(self._items())


@dataclass
class Chunk:
    """One unit to store: a text chunk, a picture, or a rendered page.

    ``image`` is held only between loading and embedding; it is never persisted in the
    payload (the rendered image goes to the media store under ``media``).
    """

    doc_id: str
    source: str
    mime: str
    modality: Modality
    page: int
    chunk: int
    text: str = ""
    title: str = ""
    boxes: list[OcrBox] = field(default_factory=list)
    media: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    tenant: str | None = None
    image: Image.Image | None = None
    # Seconds on a video's or recording's timeline; None for pages and pictures.
    start: float | None = None
    end: float | None = None


@dataclass
class Point:
    """What a store writes: an id, named vectors (any subset) and the payload."""

    id: str
    vectors: dict[str, Vector]
    payload: dict[str, Any]


@dataclass(frozen=True)
class RecordInfo:
    """What a document's record says (see ``pipeline/runner.py``): how many points the
    document has, whether they are all written (``complete``), still being written
    (``writing``) or being removed (``deleting``), and when that state was written."""

    points: int
    state: str
    written_at: float
    # Fingerprints of the text-pipeline parts that wrote it (pipeline/versions.py);
    # None for records written before versions existed.
    pipeline: dict[str, str] | None = None

    @property
    def complete(self) -> bool:
        return self.state == "complete"


@dataclass
class Hit:
    """A retrieved point with its score (and, for reranking, its vectors)."""

    id: str
    score: float
    source: str
    page: int
    modality: str
    text: str = ""
    chunk: int = 0
    doc_id: str = ""
    mime: str = ""
    boxes: Sequence[OcrBox] = field(default_factory=list)
    media: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    vectors: dict[str, Vector] = field(default_factory=dict)
    # Set on a document's completion record (``modality: record``) only.
    record: RecordInfo | None = None
    # Seconds on a video's or recording's timeline; None for pages and pictures.
    start: float | None = None
    end: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The shape the CLI's ``--json`` and the API's search hits share."""
        return {
            "id": self.id,
            "source": self.source,
            "page": self.page,
            "modality": self.modality,
            "score": self.score,
            "text": self.text,
            "chunk": self.chunk,
            "doc_id": self.doc_id,
            "media": self.media,
            "boxes": (self.boxes.to_payload() if isinstance(self.boxes, PayloadBoxes)
                      else [b.to_payload() for b in self.boxes]),
            "metadata": self.metadata,
            "start": self.start,
            "end": self.end,
        }


@dataclass
class Filter:
    """Restrictions on a query, translated by each store backend.

    ``source_prefix`` matches whole path components: ``docs/a`` matches ``docs/a/x.pdf``
    but not ``docs/ab.pdf``. ``metadata`` matches exact values of user metadata.
    """

    modality: list[str] | None = None
    source: str | None = None
    source_prefix: str | None = None
    doc_id: str | None = None
    exclude_doc_id: str | None = None
    tenant: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Any of these documents / none of these documents.
    doc_ids: list[str] | None = None
    exclude_doc_ids: list[str] | None = None

    def is_empty(self) -> bool:
        # ``doc_ids=[]`` is not "no restriction": it is refused when translated.
        return self.doc_ids is None and not any(
            (self.modality, self.source, self.source_prefix, self.doc_id,
             self.exclude_doc_id, self.tenant, self.metadata, self.exclude_doc_ids)
        )


@dataclass(frozen=True)
class VectorQuery:
    """One retrieval path: a named vector and the query vector for it."""

    using: str
    vector: Vector
    limit: int


@dataclass
class SearchRequest:
    """Prefetch every path, fuse inside the store (RRF or DBSF), return ``limit`` hits."""

    paths: list[VectorQuery]
    limit: int
    fusion: Literal["rrf", "dbsf"] = "rrf"
    filter: Filter | None = None
    with_vectors: bool = False
    # Payload keys left out of the hits (their fields read as empty): the retriever
    # fetches the bulky OCR boxes of its final hits only, not of every candidate.
    exclude_payload: tuple[str, ...] = ()


@dataclass(frozen=True)
class CollectionSpec:
    """Named vectors of a collection: dense name -> dimension, and sparse names (IDF)."""

    dense: dict[str, int]
    sparse: tuple[str, ...] = (BM25,)


@dataclass
class Citation:
    """One numbered source of an answer: where it came from and what was used."""

    index: int
    source: str
    page: int
    modality: str
    text: str
    score: float
    doc_id: str = ""
    chunk: int = 0
    box: tuple[float, float, float, float] | None = None
    media: str | None = None  # media key of the page/picture; surfaces turn it into a URL
    # Seconds on a video's or recording's timeline; None for pages and pictures.
    start: float | None = None
    end: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "source": self.source,
            "page": self.page,
            "modality": self.modality,
            "text": self.text,
            "score": self.score,
            "doc_id": self.doc_id,
            "chunk": self.chunk,
            "box": list(self.box) if self.box else None,
            "media": self.media,
            "start": self.start,
            "end": self.end,
        }


@dataclass
class Answer:
    text: str
    citations: list[Citation]
    hits: list[Hit] = field(default_factory=list)
    model: str = ""
    extractive: bool = False
    usage: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able data: what ``mmrag ask --json`` prints."""
        return {
            "text": self.text,
            "citations": [c.to_json() for c in self.citations],
            "model": self.model,
            "extractive": self.extractive,
            "usage": dict(self.usage),
        }


def path_prefixes(source: str) -> list[str]:
    """Every whole-path-component prefix of ``source``, shortest first.

    ``a/b/c.pdf`` gives ``["a", "a/b", "a/b/c.pdf"]``; an absolute ``/x/y.png`` gives
    ``["/x", "/x/y.png"]``. Stores index this list so that a ``source_prefix`` filter is an
    exact match on one element, which is what makes ``docs/a`` match ``docs/a/x.pdf`` but
    not ``docs/ab.pdf``. Empty components (``a//b``, a trailing ``/``) are dropped, so
    ``path_prefixes(p)[-1]`` is also the normal form of a prefix a user typed.
    """
    lead = "/" if source.startswith("/") else ""
    parts = [p for p in source.split("/") if p]
    return [lead + "/".join(parts[: i + 1]) for i in range(len(parts))]


@dataclass(frozen=True)
class Delta:
    """A piece of answer text, in order; concatenating all deltas gives ``Answer.text``."""

    text: str


@dataclass(frozen=True)
class Done:
    """The last event of a stream: the full answer with citations and usage."""

    answer: Answer


GenerationEvent = Delta | Done


def union_box(boxes: Iterable[OcrBox]) -> tuple[float, float, float, float] | None:
    """The smallest box around all ``boxes``, or None when there are none."""
    items = [b.box for b in boxes]
    if not items:
        return None
    return (
        min(b[0] for b in items),
        min(b[1] for b in items),
        max(b[2] for b in items),
        max(b[3] for b in items),
    )
