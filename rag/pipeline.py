"""The pipeline: one object that joins the stages for the CLI, the API and LangChain.

Construction is cheap; models load on first use or in :meth:`Pipeline.load`. Everything
is built from one Settings object, so the CLI and the server behave the same.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rag.encoders import Encoders, build_encoders
from rag.errors import BadInput, NotFound
from rag.media import MediaStore
from rag.rerank import build_reranker
from rag.retrieve import Retriever
from rag.settings import Settings
from rag.store import VectorStore, build_store
from rag.types import Answer, Filter, Hit

if TYPE_CHECKING:
    from PIL import Image

    from ingest.ocr import OcrEngine
    from ingest.runner import IngestReport, IngestRunner, ProgressFn
    from rag.generate.base import GenerationEvent, Generator


class Pipeline:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.offline:
            # Never wait on a model hub that is not there: fail fast with our own message.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")

    # --- stages, built once on first use ------------------------------------------------
    @functools.cached_property
    def store(self) -> VectorStore:
        return build_store(self.settings)

    @functools.cached_property
    def encoders(self) -> Encoders:
        return build_encoders(self.settings)

    @functools.cached_property
    def media(self) -> MediaStore:
        return MediaStore(self.settings.data_path / "media")

    @functools.cached_property
    def ocr(self) -> OcrEngine | None:
        from ingest.ocr import build_ocr

        return build_ocr(self.settings.ocr)

    @functools.cached_property
    def retriever(self) -> Retriever:
        return Retriever(
            self.settings.retrieval,
            self.store,
            self.encoders,
            build_reranker(self.settings.retrieval, self.media, self.settings.offline),
            read_image=self._read_image if self.ocr is not None else None,
        )

    @functools.cached_property
    def runner(self) -> IngestRunner:
        from ingest.runner import IngestRunner

        return IngestRunner(self.settings, self.store, self.encoders, self.media, self.ocr)

    @functools.cached_property
    def generator(self) -> Generator:
        from rag.generate import build_generator

        return build_generator(self.settings, self.media)

    def _read_image(self, image: Image.Image) -> str:
        from ingest.ocr import ocr_text

        assert self.ocr is not None
        return ocr_text(self.ocr.read(image))

    def load(self) -> None:
        """Build every stage and load every model now: a missing model fails at start-up,
        not mid-request, and server threads never race to build a stage lazily."""
        _ = (self.store, self.media, self.retriever, self.runner)
        self.encoders.load()
        reranker_load = getattr(self.retriever.reranker, "load", None)
        if reranker_load is not None:
            reranker_load()
        if self.ocr is not None and hasattr(self.ocr, "load"):
            self.ocr.load()
        self.generator.load()

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()

    # --- ingest ---------------------------------------------------------------------------
    def ingest(
        self,
        collection: str,
        paths: list[str],
        metadata: dict[str, Any] | None = None,
        progress: ProgressFn | None = None,
    ) -> IngestReport:
        from ingest.runner import file_items

        items = file_items(paths, self.settings.ingest.max_file_bytes)
        return self.runner.run(collection, items, metadata=metadata, progress=progress)

    # --- retrieval and answers ------------------------------------------------------------
    def search(
        self,
        collection: str,
        text: str | None = None,
        image: Image.Image | None = None,
        limit: int | None = None,
        flt: Filter | None = None,
    ) -> list[Hit]:
        return self.retriever.search(collection, text, image, limit, flt)

    def _context(
        self,
        collection: str,
        question: str,
        image: Image.Image | None,
        history: list[dict[str, Any]] | None,
        flt: Filter | None,
        limit: int | None,
    ) -> tuple[str, list[Hit]]:
        from rag.generate.base import condense_query

        if not question.strip() and image is None:
            raise BadInput("ask needs a question, an image, or both")
        query = condense_query(question, history or []) if history else question
        hits = self.search(collection, query, image, limit or self.settings.generator.max_sources,
                           flt)
        return query, hits

    def ask(
        self,
        collection: str,
        question: str,
        image: Image.Image | None = None,
        history: list[dict[str, Any]] | None = None,
        flt: Filter | None = None,
        limit: int | None = None,
    ) -> Answer:
        _, hits = self._context(collection, question, image, history, flt, limit)
        return self.generator.generate(question, hits, history, image)

    def ask_stream(
        self,
        collection: str,
        question: str,
        image: Image.Image | None = None,
        history: list[dict[str, Any]] | None = None,
        flt: Filter | None = None,
        limit: int | None = None,
    ) -> Iterator[GenerationEvent]:
        _, hits = self._context(collection, question, image, history, flt, limit)
        return self.generator.stream(question, hits, history, image)

    # --- collections and documents --------------------------------------------------------
    def collections(self) -> list[dict[str, Any]]:
        return [{"name": c, "points": self.store.count(c)} for c in self.store.collections()]

    def documents(self, collection: str) -> list[dict[str, Any]]:
        """One row per stored source: its doc id, type, pages and point count."""
        docs: dict[str, dict[str, Any]] = {}
        for hit in self.store.scroll(collection):
            row = docs.setdefault(
                hit.source,
                {"source": hit.source, "doc_id": hit.doc_id, "mime": hit.mime, "points": 0,
                 "pages": 0},
            )
            row["points"] += 1
            row["pages"] = max(row["pages"], hit.page)
        return sorted(docs.values(), key=lambda r: r["source"])

    def delete_source(self, collection: str, source: str) -> int:
        deleted = self.store.delete(collection, Filter(source=source))
        if not deleted:
            raise NotFound(f"{source!r} is not in collection {collection!r} "
                           f"(see `mmrag documents --collection {collection}`)")
        return deleted

    def drop(self, collection: str) -> None:
        self.store.drop(collection)
