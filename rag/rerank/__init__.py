"""Rerankers, chosen by ``settings.retrieval.reranker`` from :data:`BACKENDS`."""

from __future__ import annotations

from collections.abc import Callable

from rag.errors import ConfigError
from rag.rerank.base import Reranker
from rag.rerank.exact import ExactReranker, NoReranker
from rag.settings import RetrievalSettings

BACKENDS: dict[str, Callable[[RetrievalSettings], Reranker]] = {
    "none": NoReranker,
    "exact": ExactReranker,
}


def build_reranker(settings: RetrievalSettings) -> Reranker:
    try:
        return BACKENDS[settings.reranker](settings)
    except KeyError:
        raise ConfigError(
            f"unknown reranker {settings.reranker!r}; choose one of {sorted(BACKENDS)}"
        ) from None


__all__ = ["BACKENDS", "Reranker", "build_reranker"]
