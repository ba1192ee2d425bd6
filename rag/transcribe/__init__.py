"""Transcription: a protocol, one backend per module, and a registry by name.

A new backend is one module with a class taking
:class:`~rag.settings.TranscribeSettings` plus one entry in :data:`BACKENDS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache

from rag.errors import ConfigError
from rag.settings import TranscribeSettings
from rag.transcribe.base import SAMPLE_RATE, Segment, Transcriber, segments_text
from rag.transcribe.pocketsphinx import PocketsphinxTranscriber
from rag.transcribe.whisper import WhisperTranscriber

BACKENDS: dict[str, Callable[[TranscribeSettings], Transcriber]] = {
    "pocketsphinx": PocketsphinxTranscriber,
    "whisper": WhisperTranscriber,
}


def build_transcriber(settings: TranscribeSettings) -> Transcriber | None:
    """The configured transcriber (not loaded yet), or None when transcription is off."""
    if not settings.enabled:
        return None
    factory = BACKENDS.get(settings.backend)
    if factory is None:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError(f"unknown transcribe.backend {settings.backend!r}; known: {known}")
    return factory(settings)


@lru_cache(maxsize=4)
def _cached(dump: str) -> Transcriber | None:
    return build_transcriber(TranscribeSettings.model_validate(json.loads(dump)))


def shared_transcriber(settings: TranscribeSettings) -> Transcriber | None:
    """One transcriber per distinct settings in this process (a model loads once per
    ingest worker, on the first recording it meets, never for a batch without one)."""
    return _cached(settings.model_dump_json())


__all__ = [
    "BACKENDS",
    "SAMPLE_RATE",
    "PocketsphinxTranscriber",
    "Segment",
    "Transcriber",
    "WhisperTranscriber",
    "build_transcriber",
    "segments_text",
    "shared_transcriber",
]
