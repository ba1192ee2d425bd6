"""BM25 sparse vectors from Qdrant Edge's own tokenizer and stemmer.

Documents get term-frequency weights (k, b, avg_len); queries get 1.0 per unique token;
the IDF part is applied by the store (the ``bm25`` vector has Qdrant's IDF modifier), so
the same vectors work on Edge and on a Qdrant server.
"""

from __future__ import annotations

import qdrant_edge

from rag.errors import ConfigError
from rag.settings import SparseSettings
from rag.types import SparseVector


class Bm25Encoder:
    name = "bm25"

    def __init__(self, settings: SparseSettings) -> None:
        try:
            self._model = qdrant_edge.Bm25(qdrant_edge.Bm25Config(language=settings.language))
        except ValueError as exc:
            raise ConfigError(f"sparse.language {settings.language!r}: {exc}") from exc

    @staticmethod
    def _convert(vec: qdrant_edge.SparseVector) -> SparseVector:
        pairs = sorted(zip(vec.indices, vec.values, strict=True))
        return SparseVector(tuple(i for i, _ in pairs), tuple(float(v) for _, v in pairs))

    def encode_documents(self, texts: list[str]) -> list[SparseVector]:
        return [self._convert(self._model.embed_document(t)) for t in texts]

    def encode_queries(self, texts: list[str]) -> list[SparseVector]:
        return [self._convert(self._model.embed_query(t)) for t in texts]
