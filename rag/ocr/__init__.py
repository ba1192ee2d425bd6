"""OCR: a protocol, one backend per module, and a registry to pick one from settings.

A new backend is one module with a class taking :class:`~rag.settings.OcrSettings` plus
one entry in :data:`BACKENDS`.
"""

from __future__ import annotations

from collections.abc import Callable

from rag.errors import ConfigError
from rag.ocr.base import (
    OcrEngine,
    SkipBlank,
    is_blank,
    ocr_layout,
    ocr_text,
    quad_to_box,
    reading_order,
)
from rag.ocr.rapidocr import RapidOcr
from rag.ocr.torch_ocr import RapidOcrTorch
from rag.settings import OcrSettings

#: Changes whenever the text OCR gives for the same image and settings changes (a better
#: recogniser, new post-processing): documents read by an older version are rebuilt by
#: the next ingest (pipeline/versions.py).
#: 1: RapidOCR lines as read, number fixes, 1.3x stretch.
#: 2: spaces the recogniser dropped put back from character gaps + word segmentation
#:    (rag/ocr/words.py), fullwidth punctuation as ASCII, per-word boxes.
OCR_TEXT_VERSION = 2

BACKENDS: dict[str, Callable[[OcrSettings], OcrEngine]] = {
    "rapidocr": RapidOcr,
    # The same PP-OCRv4 models converted to torch: runs on ocr.device (a GPU when present).
    "rapidocr_torch": RapidOcrTorch,
}


def build_ocr(settings: OcrSettings) -> OcrEngine | None:
    """The configured OCR engine, or None when OCR is disabled.

    Cheap: models load on the engine's ``load()`` or first ``read()``, so building one
    for a command that never OCRs costs nothing.
    """
    if not settings.enabled:
        return None
    factory = BACKENDS.get(settings.backend)
    if factory is None:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError(f"unknown OCR backend {settings.backend!r}; known: {known}")
    engine = factory(settings)
    return SkipBlank(engine, settings.blank_range) if settings.blank_range >= 0 else engine


__all__ = [
    "BACKENDS",
    "OCR_TEXT_VERSION",
    "OcrEngine",
    "RapidOcr",
    "RapidOcrTorch",
    "SkipBlank",
    "is_blank",
    "build_ocr",
    "ocr_layout",
    "ocr_text",
    "quad_to_box",
    "reading_order",
]
