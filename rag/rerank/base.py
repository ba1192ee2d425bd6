"""Reranker protocol: re-order the fused candidates of one query."""

from __future__ import annotations

from typing import Protocol

from rag.types import Hit, Vector


class Reranker(Protocol):
    #: True when ``rerank`` needs ``Hit.vectors`` (the store is asked for them).
    needs_vectors: bool

    def rerank(self, query: list[tuple[str, Vector]], hits: list[Hit], limit: int) -> list[Hit]:
        """``query`` holds (vector name, query vector) per path; a name may repeat (a text
        and an image query both search ``clip``). ``hits`` arrive best first, fused."""
        ...
