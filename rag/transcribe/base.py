"""The transcription stage's protocol: 16 kHz mono speech in, timed segments out.

Audio arrives as an iterable of int16 blocks (a loader streams it out of the container),
so an hour-long recording is never one array; a backend yields segments as it goes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

#: The sample rate every backend is fed (what Whisper and pocketsphinx's model expect).
SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Segment:
    """A word or a phrase that was said, and when (seconds on the media's timeline)."""

    text: str
    start: float
    end: float


@runtime_checkable
class Transcriber(Protocol):
    """A speech recogniser. ``load()`` loads the model (cheap constructors, as for every
    stage); ``transcribe`` may call it lazily."""

    name: str

    def load(self) -> None: ...

    def transcribe(self, pcm: Iterable[np.ndarray]) -> Iterator[Segment]:
        """Segments in time order for int16 mono blocks at :data:`SAMPLE_RATE`."""
        ...


def segments_text(segments: Iterable[Segment]) -> str:
    return " ".join(s.text for s in segments if s.text)
