"""Reranker protocol: re-order the fused candidates of one query.

Most rerankers only need the query's vectors (``exact``). Rerankers that read the query
itself, a cross-encoder or a vision model, also implement :class:`ReadsQuery`;
:func:`apply_reranker` is the one call site that hands each kind what it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from rag.types import Hit, Vector

if TYPE_CHECKING:
    from PIL import Image


class Reranker(Protocol):
    #: True when ``rerank`` needs ``Hit.vectors`` (the store is asked for them).
    needs_vectors: bool

    def rerank(self, query: list[tuple[str, Vector]], hits: list[Hit], limit: int) -> list[Hit]:
        """``query`` holds (vector name, query vector) per path; a name may repeat (a text
        and an image query both search ``clip``). ``hits`` arrive best first, fused."""
        ...


@runtime_checkable
class ReadsQuery(Protocol):
    """A reranker that scores (query, candidate) pairs from the query's text and image."""

    def rerank_query(
        self, text: str, image: Image.Image | None, hits: list[Hit], limit: int
    ) -> list[Hit]:
        """Like :meth:`Reranker.rerank`, given the query text (may be empty) and image."""
        ...


def apply_reranker(
    reranker: Reranker,
    query: list[tuple[str, Vector]],
    hits: list[Hit],
    limit: int,
    text: str = "",
    image: Image.Image | None = None,
) -> list[Hit]:
    """Rerank ``hits``: with the query text and image for rerankers that read them, with
    the query vectors for the rest."""
    if isinstance(reranker, ReadsQuery):
        return reranker.rerank_query(text, image, hits, limit)
    return reranker.rerank(query, hits, limit)


def keep_unscored_slots(hits: list[Hit], scores: dict[int, float]) -> list[Hit]:
    """Order ``hits`` by ``scores`` (index -> score; higher first, ties by input order),
    leaving every hit without a score in its original slot.

    A text reranker cannot judge a picture that has no text; moving such hits to the end
    would bury them, so they stay where fusion put them and the scored hits are sorted
    around them. Scored hits get ``score`` set to their new score.
    """
    ranked = sorted(scores, key=lambda i: (-scores[i], i))
    out: list[Hit] = []
    queue = iter(ranked)
    for i, hit in enumerate(hits):
        if i in scores:
            j = next(queue)
            picked = hits[j]
            picked.score = float(scores[j])
            out.append(picked)
        else:
            out.append(hit)
    return out
