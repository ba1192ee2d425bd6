"""Retrieval: turn a text and/or image query into vectors, search every available path
with fusion inside the store, then rerank.

A text query searches ``clip`` (text tower), ``text`` and ``bm25``. An image query
searches ``clip`` with the image and ``text``/``bm25`` with the image's OCR text; both at
once search all of them. Paths the collection or the profile lacks are skipped, so a
collection built with CLIP can still be searched from the offline profile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from rag.encoders import Encoders
from rag.errors import BadInput, Conflict
from rag.payload import BOXES, PATH_PREFIXES
from rag.rerank import Reranker, apply_reranker
from rag.settings import RetrievalSettings
from rag.store import VectorStore
from rag.types import BM25, CLIP, TEXT, Filter, Hit, SearchRequest, Vector, VectorQuery

if TYPE_CHECKING:
    from PIL import Image

#: Reads the text in an image (OCR), so image queries can use the text paths.
ImageReader = Callable[["Image.Image"], str]
# Re-queries that exclude incomplete documents, and how many such documents at most.
MAX_REQUERIES = 2
MAX_HIDDEN = 256

#: Payload the candidates go without: OCR line boxes are ~80% of a payload's bytes and
#: only the final hits show them (fetched by id after reranking); the path prefixes are
#: for filters only. Leaving them out took a 50-candidate query from 2.7 to 1.9 ms in
#: the engine and spared the boxes' Python objects of 45 discarded candidates.
CANDIDATE_EXCLUDES = (BOXES, PATH_PREFIXES)

#: Which of these doc ids (of one collection) are complete documents.
CompleteFn = Callable[[str, Iterable[str]], set[str]]


class Retriever:
    def __init__(
        self,
        settings: RetrievalSettings,
        store: VectorStore,
        encoders: Encoders,
        reranker: Reranker,
        read_image: ImageReader | None = None,
        complete: CompleteFn | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.encoders = encoders
        self.reranker = reranker
        self.read_image = read_image
        # Points of a document whose record is not complete (a write in flight, a crash,
        # a delete half-way) are never returned (rag/store/records.py).
        self.complete = complete

    def query_vectors(
        self, collection: str, text: str | None = None, image: Image.Image | None = None
    ) -> list[tuple[str, Vector]]:
        """(vector name, query vector) for every path this query can use."""
        text = (text or "").strip()
        if not text and image is None:
            raise BadInput("a search needs query text, an image, or both")
        spec = self.store.spec(collection)
        enc = self.encoders
        for name, dim in enc.dense_dims().items():
            if name in spec.dense and spec.dense[name] != dim:
                raise Conflict(
                    f"collection {collection!r} stores {name!r} vectors of size "
                    f"{spec.dense[name]} but the {name} encoder gives {dim}: search it with the "
                    "profile it was ingested with, or re-ingest into a new collection"
                )
        lexical = text
        if image is not None and self.read_image is not None:
            ocr_text = self.read_image(image).strip()
            lexical = f"{text}\n{ocr_text}".strip() if ocr_text else text
        paths: list[tuple[str, Vector]] = []
        if enc.clip is not None and CLIP in spec.dense:
            if image is not None:
                paths.append((CLIP, [float(x) for x in enc.clip.encode_images([image])[0]]))
            if text:
                paths.append((CLIP, [float(x) for x in enc.clip.encode_texts([text])[0]]))
        if lexical and enc.text is not None and TEXT in spec.dense:
            paths.append((TEXT, [float(x) for x in enc.text.encode([lexical])[0]]))
        if lexical and enc.sparse is not None and BM25 in spec.sparse:
            sparse = enc.sparse.encode_queries([lexical])[0]
            if sparse.indices:
                paths.append((BM25, sparse))
        if not paths:
            raise BadInput(
                f"nothing to search in {collection!r} with this query: an image query needs "
                "CLIP (default profile) or readable text in the image (offline profile)"
            )
        return paths

    def _complete_hits(self, collection: str, request: SearchRequest) -> list[Hit]:
        """The fused candidates of complete documents only. A document being written, or
        left half-deleted by a crash, can fill the candidate list (a 300-chunk manual
        owns every top-50 slot of its topic): its doc ids are then excluded inside the
        engine and the query runs again, so they never crowd out whole documents. That
        costs a second query only while such a document exists."""
        hits = self.store.query(collection, request)
        if self.complete is None:
            return hits
        hidden: set[str] = set()
        for _ in range(MAX_REQUERIES + 1):
            if not hits:
                return hits
            whole = self.complete(collection, {h.doc_id for h in hits})
            partial = {h.doc_id for h in hits} - whole
            if not partial:
                return hits
            hidden |= partial
            if len(hidden) > MAX_HIDDEN:
                break
            base = request.filter or Filter()
            request = replace(request, filter=replace(
                base, exclude_doc_ids=sorted(hidden | set(base.exclude_doc_ids or ()))))
            hits = self.store.query(collection, request)
        whole = self.complete(collection, {h.doc_id for h in hits})
        return [h for h in hits if h.doc_id in whole]

    def search(
        self,
        collection: str,
        text: str | None = None,
        image: Image.Image | None = None,
        limit: int | None = None,
        flt: Filter | None = None,
    ) -> list[Hit]:
        limit = limit or self.settings.limit
        if limit < 1 or limit > 1000:
            raise BadInput(f"limit must be between 1 and 1000, got {limit}")
        query = self.query_vectors(collection, text, image)
        depth = max(self.settings.prefetch_limit, limit)
        request = SearchRequest(
            paths=[VectorQuery(using=name, vector=vec, limit=depth) for name, vec in query],
            limit=depth,
            fusion=self.settings.fusion,
            filter=flt,
            with_vectors=self.reranker.needs_vectors,
            exclude_payload=CANDIDATE_EXCLUDES,
        )
        hits = self._complete_hits(collection, request)
        hits = apply_reranker(self.reranker, query, hits, limit, text or "", image)
        return self._with_boxes(collection, hits)

    def _with_boxes(self, collection: str, hits: list[Hit]) -> list[Hit]:
        """The final hits with their OCR boxes, looked up by id; one removed since the
        query (a delete that just ran) is dropped, as the query would now drop it."""
        if not hits:
            return hits
        stored = {h.id: h for h in self.store.retrieve(collection, [h.id for h in hits])}
        out = []
        for h in hits:
            full = stored.get(h.id)
            if full is not None:
                h.boxes = full.boxes
                h.vectors = {}
                out.append(h)
        return out
