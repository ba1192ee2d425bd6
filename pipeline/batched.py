"""The query side's stages behind micro-batchers (:mod:`pipeline.batching`).

The retriever is handed these instead of the plain encoders and store, so every
surface's queries (REST search, chat, MCP, the CLI) share one batcher per model: the
text encoder, CLIP's text and image towers, the OCR of query images, and the store's
queries and complete-document checks. They present the same interfaces as what they
wrap, so the retriever does not know it is batched. Ingest keeps the plain encoders:
its batches are already large.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from pipeline.batching import Batcher, BatchListener
from rag.encoders import Encoders
from rag.encoders.base import ImageTextEncoder, TextEncoder
from rag.store import VectorStore
from rag.types import Hit, SearchRequest

if TYPE_CHECKING:
    from PIL import Image

#: Which of these doc ids (of one collection) are complete documents.
CompleteFn = Callable[[str, Iterable[str]], set[str]]


def _rows(fn: Callable[[list[Any]], np.ndarray]) -> Callable[[list[Any]], list[Any]]:
    """A stage function over an encoder call: one row of its array per input."""
    return lambda items: list(fn(items))


class BatchedTextEncoder:
    def __init__(self, inner: TextEncoder, batcher: Batcher[str, np.ndarray]) -> None:
        self.inner = inner
        self.name = inner.name
        self._batcher = batcher

    @property
    def dim(self) -> int:
        return self.inner.dim

    def load(self) -> None:
        self.inner.load()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return self.inner.encode(texts)
        return np.stack(self._batcher.submit(list(texts)))


class BatchedClipEncoder:
    def __init__(self, inner: ImageTextEncoder, texts: Batcher[str, np.ndarray],
                 images: Batcher[Image.Image, np.ndarray]) -> None:
        self.inner = inner
        self.name = inner.name
        self._texts = texts
        self._images = images

    @property
    def dim(self) -> int:
        return self.inner.dim

    def load(self) -> None:
        self.inner.load()

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return self.inner.encode_texts(texts)
        return np.stack(self._texts.submit(list(texts)))

    def encode_images(self, images: list[Image.Image]) -> np.ndarray:
        if not images:
            return self.inner.encode_images(images)
        return np.stack(self._images.submit(list(images)))

    def geometry(self) -> Callable[[Image.Image], Image.Image] | None:
        return self.inner.geometry()


class BatchedStore:
    """The store as the retriever sees it: ``query`` goes through a batcher that runs
    concurrent queries of one collection as one ``query_batch`` call; everything else
    is the store itself."""

    def __init__(self, inner: VectorStore, batcher: Batcher[tuple[str, SearchRequest],
                                                             list[Hit]]) -> None:
        self._inner = inner
        self._batcher = batcher

    def query(self, collection: str, request: SearchRequest) -> list[Hit]:
        return self._batcher.submit([(collection, request)])[0]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def run_queries(store: VectorStore) -> Callable[[list[tuple[str, SearchRequest]]],
                                                 list[list[Hit]]]:
    """The store stage: queries grouped by collection, one batch call per collection."""

    def run(items: list[tuple[str, SearchRequest]]) -> list[list[Hit]]:
        out: list[list[Hit] | None] = [None] * len(items)
        for collection, idx in _groups(c for c, _ in items).items():
            reqs = [items[i][1] for i in idx]
            found = (store.query_batch(collection, reqs) if len(reqs) > 1
                     else [store.query(collection, reqs[0])])
            for i, hits in zip(idx, found, strict=True):
                out[i] = hits
        return cast(list[list[Hit]], out)

    return run


def run_complete(complete: CompleteFn) -> Callable[[list[tuple[str, frozenset[str]]]],
                                                    list[set[str]]]:
    """The complete-document check: one check per collection over the union of the
    doc ids its concurrent searches found; each gets its own part of the answer."""

    def run(items: list[tuple[str, frozenset[str]]]) -> list[set[str]]:
        out: list[set[str]] = [set() for _ in items]
        for collection, idx in _groups(c for c, _ in items).items():
            union: set[str] = set().union(*(items[i][1] for i in idx))
            whole = complete(collection, union)
            for i in idx:
                out[i] = whole & items[i][1]
        return out

    return run


def _groups(keys: Iterable[str]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return groups


class QueryBatchers:
    """Every batcher of one pipeline's query side, and what they wrap."""

    def __init__(self, max_batch: int, max_wait_s: float, expect: Callable[[], int]) -> None:
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.expect = expect
        self.listeners: list[BatchListener] = []
        self.batchers: list[Batcher[Any, Any]] = []

    def batcher(self, stage: str, run: Callable[[list[Any]], list[Any]]) -> Batcher[Any, Any]:
        b: Batcher[Any, Any] = Batcher(stage, run, self.max_batch, self.max_wait_s,
                                       self.expect, self.listeners)
        self.batchers.append(b)
        return b

    def encoders(self, enc: Encoders) -> Encoders:
        text = clip = None
        if enc.text is not None:
            text = BatchedTextEncoder(enc.text, self.batcher("text", _rows(enc.text.encode)))
        if enc.clip is not None:
            clip = BatchedClipEncoder(
                enc.clip, self.batcher("clip_text", _rows(enc.clip.encode_texts)),
                self.batcher("clip_image", _rows(enc.clip.encode_images)))
        return Encoders(clip=cast(ImageTextEncoder | None, clip),
                        text=cast(TextEncoder | None, text), sparse=enc.sparse)

    def store(self, store: VectorStore) -> VectorStore:
        return cast(VectorStore, BatchedStore(store, self.batcher("store", run_queries(store))))

    def complete(self, complete: CompleteFn) -> CompleteFn:
        batcher = self.batcher("complete", run_complete(complete))

        def check(collection: str, doc_ids: Iterable[str]) -> set[str]:
            return cast(set[str], batcher.submit([(collection, frozenset(doc_ids))])[0])

        return check

    def reader(self, read: Callable[[Image.Image], str]) -> Callable[[Image.Image], str]:
        """OCR of query images on one executor: one image after another (the engine
        batches nothing across images), never several engines' threads at once."""
        batcher = self.batcher("ocr", lambda images: [read(i) for i in images])
        return lambda image: cast(str, batcher.submit([image])[0])

    def stage(self, name: str) -> Batcher[Any, Any]:
        return next(b for b in self.batchers if b.stage == name)

    def depths(self) -> dict[str, int]:
        return {b.stage: b.depth for b in self.batchers}

    def close(self) -> None:
        for b in self.batchers:
            b.close()

