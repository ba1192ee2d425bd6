"""Encoder protocols. Backends live one per module; ``rag.encoders`` holds the registries."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rag.types import SparseVector

if TYPE_CHECKING:
    from PIL import Image


class ImageTextEncoder(Protocol):
    """A joint image/text space (CLIP): both towers give comparable unit vectors."""

    name: str

    @property
    def dim(self) -> int: ...

    def load(self) -> None: ...

    def encode_images(self, images: list[Image.Image]) -> np.ndarray: ...

    def encode_texts(self, texts: list[str]) -> np.ndarray: ...

    def geometry(self) -> Callable[[Image.Image], Image.Image] | None:
        """A picklable function that shrinks an image to what this encoder actually looks
        at (its resize and crop) such that ``encode_images`` gives the same vector for
        the shrunk image as for the original, or None. Ingest workers apply it before
        shipping pictures and pages back, so pixels the model never sees stay behind."""
        ...


class TextEncoder(Protocol):
    name: str

    @property
    def dim(self) -> int: ...

    def load(self) -> None: ...

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-normalised float32 rows, one per text."""
        ...


class SparseEncoder(Protocol):
    name: str

    def encode_documents(self, texts: list[str]) -> list[SparseVector]: ...

    def encode_queries(self, texts: list[str]) -> list[SparseVector]: ...
