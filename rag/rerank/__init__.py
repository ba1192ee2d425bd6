"""Rerankers, chosen by ``settings.retrieval.reranker`` from :data:`BACKENDS`.

``none`` keeps the fused order, ``exact`` re-scores on all vectors with MMR,
``cross_encoder`` reads (query, passage) pairs with a sentence-transformers CrossEncoder,
``vlm`` asks an OpenAI-compatible vision model to score passages and page images. The
last two import their libraries only when chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rag.errors import ConfigError
from rag.rerank.base import ReadsQuery, Reranker, apply_reranker
from rag.rerank.exact import ExactReranker, NoReranker
from rag.settings import RetrievalSettings

if TYPE_CHECKING:
    from rag.media import MediaStore

#: name -> factory(retrieval settings, media store or None, offline).
Factory = Callable[[RetrievalSettings, "MediaStore | None", bool], Reranker]


def _none(settings: RetrievalSettings, media: MediaStore | None, offline: bool) -> Reranker:
    return NoReranker(settings)


def _exact(settings: RetrievalSettings, media: MediaStore | None, offline: bool) -> Reranker:
    return ExactReranker(settings)


def _cross_encoder(
    settings: RetrievalSettings, media: MediaStore | None, offline: bool
) -> Reranker:
    from rag.rerank.cross_encoder import CrossEncoderReranker

    return CrossEncoderReranker(settings, offline=offline)


def _vlm(settings: RetrievalSettings, media: MediaStore | None, offline: bool) -> Reranker:
    from rag.rerank.vlm import VlmReranker

    return VlmReranker(settings, media)


BACKENDS: dict[str, Factory] = {
    "none": _none,
    "exact": _exact,
    "cross_encoder": _cross_encoder,
    "vlm": _vlm,
}


def build_reranker(
    settings: RetrievalSettings, media: MediaStore | None = None, offline: bool = False
) -> Reranker:
    """The configured reranker. Cheap: a cross-encoder loads on ``load()`` or first use."""
    try:
        factory = BACKENDS[settings.reranker]
    except KeyError:
        raise ConfigError(
            f"unknown reranker {settings.reranker!r}; choose one of {sorted(BACKENDS)} "
            "(retrieval.reranker / MMRAG_RETRIEVAL__RERANKER)"
        ) from None
    return factory(settings, media, offline)


__all__ = ["BACKENDS", "ReadsQuery", "Reranker", "apply_reranker", "build_reranker"]
