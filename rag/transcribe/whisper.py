"""Whisper through faster-whisper (CTranslate2), loaded by name or folder.

Like CLIP, nothing is downloaded at run time: ``transcribe.model`` is a folder holding a
CTranslate2 conversion (``model.bin``, ``config.json``, ``tokenizer.json``), or a name
that must already be in the local Hugging Face cache; anything else fails with a message
naming the model and how to provide it. faster-whisper is an optional extra
(``pip install 'mmrag[whisper]'``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError, ModelUnavailable, one_line
from rag.settings import TranscribeSettings
from rag.transcribe.base import SAMPLE_RATE, Segment

#: Audio is transcribed in blocks of this many seconds (Whisper reads 30 s windows
#: inside each), so an hour of speech is never one array.
BLOCK_S = 600.0
DEFAULT_MODEL = "Systran/faster-whisper-small"


def _default_factory(model: str, device: str, compute_type: str, local_only: bool) -> Any:
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise ConfigError(
            "transcribe.backend whisper needs faster-whisper: pip install 'mmrag[whisper]'"
        ) from exc
    return WhisperModel(model, device=device, compute_type=compute_type,
                        local_files_only=local_only)


class WhisperTranscriber:
    name = "whisper"

    def __init__(self, settings: TranscribeSettings,
                 factory: Callable[[str, str, str, bool], Any] | None = None) -> None:
        self.settings = settings
        self._factory = factory or _default_factory
        self._model: Any = None

    @property
    def model_name(self) -> str:
        return self.settings.model or DEFAULT_MODEL

    def load(self) -> None:
        if self._model is not None:
            return
        name = self.model_name
        folder = Path(name).expanduser()
        looks_like_path = name.startswith((".", "/", "~")) or folder.exists()
        if looks_like_path and not (folder / "model.bin").is_file():
            raise ModelUnavailable(
                f"whisper model folder {str(folder)!r} (transcribe.model) has no model.bin; "
                "it must hold a CTranslate2 conversion of a Whisper model "
                "(ct2-transformers-converter --model openai/whisper-small --output_dir DIR)"
            )
        try:
            self._model = self._factory(str(folder) if looks_like_path else name,
                                        self.settings.device, self.settings.compute_type,
                                        not looks_like_path)
        except ConfigError:
            raise
        except Exception as exc:
            raise ModelUnavailable(
                f"whisper model {name!r} (transcribe.model) is not available locally and "
                "nothing is downloaded at run time: put a CTranslate2 conversion of it in a "
                "folder and set transcribe.model to that folder, or fill the Hugging Face "
                f"cache on a connected machine ({one_line(exc)})"
            ) from exc

    def transcribe(self, pcm: Iterable[np.ndarray]) -> Iterator[Segment]:
        self.load()
        block: list[np.ndarray] = []
        size = 0
        offset = 0.0
        limit = int(BLOCK_S * SAMPLE_RATE)
        for piece in pcm:
            block.append(np.asarray(piece, dtype=np.int16))
            size += len(block[-1])
            if size >= limit:
                yield from self._block(block, offset)
                offset += size / SAMPLE_RATE
                block, size = [], 0
        if size:
            yield from self._block(block, offset)

    def _block(self, pieces: list[np.ndarray], offset: float) -> Iterator[Segment]:
        audio = np.concatenate(pieces).astype(np.float32) / 32768.0
        segments, _info = self._model.transcribe(
            audio, language=self.settings.language or None, word_timestamps=True,
            vad_filter=False, beam_size=1,
        )
        for seg in segments:
            words = getattr(seg, "words", None) or []
            if words:
                for w in words:
                    text = str(w.word).strip()
                    if text:
                        yield Segment(text, round(offset + float(w.start), 3),
                                      round(offset + float(w.end), 3))
            elif str(seg.text).strip():
                yield Segment(str(seg.text).strip(), round(offset + float(seg.start), 3),
                              round(offset + float(seg.end), 3))
