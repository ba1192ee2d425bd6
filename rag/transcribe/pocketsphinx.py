"""CMU pocketsphinx: the transcriber that works with what ships as packages.

The ``pocketsphinx`` wheel carries a US English acoustic model, dictionary and language
model, so nothing is downloaded. Its voice activity detector splits the stream into
utterances, each decoded on its own; word times are the utterance start plus the
decoder's frame times. Accuracy is far below Whisper's (README, "Video and audio"); it is
the floor that always works.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError, ModelUnavailable
from rag.settings import TranscribeSettings
from rag.transcribe.base import SAMPLE_RATE, Segment

_ALTERNATIVE = re.compile(r"\(\d+\)$")  # "the(2)": the dictionary's second pronunciation


def _word(raw: str) -> str:
    """A recognised word as text; silences, breaths and noises are not words."""
    if raw.startswith(("<", "[", "+")):
        return ""
    return _ALTERNATIVE.sub("", raw)


class PocketsphinxTranscriber:
    name = "pocketsphinx"

    def __init__(self, settings: TranscribeSettings) -> None:
        self.settings = settings
        self._decoder: Any = None

    def _config(self) -> dict[str, Any]:
        if not self.settings.model:
            return {}
        folder = Path(self.settings.model).expanduser()
        if not folder.is_dir():
            raise ModelUnavailable(
                f"pocketsphinx model folder {str(folder)!r} (transcribe.model) does not exist; "
                "leave transcribe.model empty for the packaged US English model"
            )
        config: dict[str, Any] = {"hmm": str(folder)}
        for key, pattern in (("lm", "*.lm.bin"), ("dict", "*.dict")):
            found = sorted(folder.glob(pattern))
            if found:
                config[key] = str(found[0])
        return config

    def load(self) -> None:
        if self._decoder is not None:
            return
        if self.settings.language and not self.settings.language.startswith("en") \
                and not self.settings.model:
            raise ConfigError(
                f"transcribe.language {self.settings.language!r}: the packaged pocketsphinx "
                "model is US English only; set transcribe.model to a model folder for "
                "that language, or use transcribe.backend: whisper"
            )
        try:
            from pocketsphinx import Decoder
        except ImportError as exc:  # pragma: no cover - a dependency of mmrag
            raise ConfigError("pocketsphinx is not installed: pip install pocketsphinx") from exc
        self._decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **self._config())

    def transcribe(self, pcm: Iterable[np.ndarray]) -> Iterator[Segment]:
        from pocketsphinx import Endpointer

        self.load()
        decoder = self._decoder
        endpointer = Endpointer(sample_rate=SAMPLE_RATE)
        frame_bytes = int(endpointer.frame_bytes)
        frate = float(decoder.config["frate"])
        pending = b""
        in_utt = False

        def finish() -> Iterator[Segment]:
            decoder.end_utt()
            offset = float(endpointer.speech_start)
            for seg in decoder.seg():
                text = _word(seg.word)
                if text:
                    yield Segment(text, round(offset + seg.start_frame / frate, 3),
                                  round(offset + (seg.end_frame + 1) / frate, 3))

        def feed(frame: bytes, last: bool) -> Iterator[Segment]:
            nonlocal in_utt
            was_speech = endpointer.in_speech
            speech = endpointer.end_stream(frame) if last else endpointer.process(frame)
            if speech is None:
                return
            if not was_speech or not in_utt:
                decoder.start_utt()
                in_utt = True
            decoder.process_raw(speech)
            if not endpointer.in_speech:
                in_utt = False
                yield from finish()

        for block in pcm:
            pending += np.asarray(block, dtype=np.int16).tobytes()
            usable = len(pending) - len(pending) % frame_bytes
            for i in range(0, usable, frame_bytes):
                yield from feed(pending[i : i + frame_bytes], last=False)
            pending = pending[usable:]
        if pending:  # pocketsphinx's end_stream cannot take an empty frame
            yield from feed(pending, last=True)
        if in_utt:
            yield from finish()
