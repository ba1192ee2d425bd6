"""The transcription stage: registry, the whisper backend's loading rules (a test double
stands in for the Whisper model only), and pocketsphinx on real speech."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from rag.errors import ConfigError, ModelUnavailable
from rag.settings import TranscribeSettings
from rag.transcribe import (
    PocketsphinxTranscriber,
    WhisperTranscriber,
    build_transcriber,
    shared_transcriber,
)
from rag.transcribe.whisper import BLOCK_S
from tests.av_media import ESPEAK, ESPEAK_MISSING, silence, speech


def test_backends_are_chosen_by_name() -> None:
    assert isinstance(build_transcriber(TranscribeSettings()), PocketsphinxTranscriber)
    assert isinstance(build_transcriber(TranscribeSettings(backend="whisper")),
                      WhisperTranscriber)
    assert build_transcriber(TranscribeSettings(enabled=False)) is None
    with pytest.raises(ConfigError, match="unknown transcribe.backend 'vosk'.*pocketsphinx"):
        build_transcriber(TranscribeSettings(backend="vosk"))
    one = shared_transcriber(TranscribeSettings())
    assert one is shared_transcriber(TranscribeSettings())


def test_whisper_by_name_fails_with_the_model_and_what_to_do() -> None:
    name = "Systran/faster-whisper-small"
    t = WhisperTranscriber(TranscribeSettings(backend="whisper", model=name))
    with pytest.raises((ModelUnavailable, ConfigError)) as err:
        t.load()
    text = str(err.value)
    assert "faster-whisper" in text
    if isinstance(err.value, ModelUnavailable):
        assert "Systran/faster-whisper-small" in text and "folder" in text


def test_whisper_folder_without_a_model_is_named(tmp_path: Path) -> None:
    t = WhisperTranscriber(TranscribeSettings(backend="whisper", model=str(tmp_path)))
    with pytest.raises(ModelUnavailable, match=rf"{tmp_path}.*model.bin.*ct2-transformers"):
        t.load()


class FakeWhisper:
    """Stands in for faster_whisper.WhisperModel: one word a second of audio."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def transcribe(self, audio: np.ndarray, **kw: Any) -> tuple[list[Any], None]:
        assert audio.dtype == np.float32 and kw["word_timestamps"]
        self.calls.append(len(audio))
        words = [SimpleNamespace(word=f" w{i}", start=float(i), end=i + 0.5)
                 for i in range(len(audio) // 16000)]
        return [SimpleNamespace(text="", start=0.0, end=0.0, words=words)], None


def test_whisper_streams_blocks_and_puts_words_on_the_timeline(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    fake = FakeWhisper()
    seen: list[tuple[str, bool]] = []

    def factory(model: str, device: str, compute: str, local_only: bool) -> FakeWhisper:
        seen.append((model, local_only))
        return fake

    t = WhisperTranscriber(TranscribeSettings(backend="whisper", model=str(tmp_path)), factory)
    seconds = int(BLOCK_S) + 5
    blocks = (np.zeros(16000, np.int16) for _ in range(seconds))
    words = list(t.transcribe(blocks))
    assert seen == [(str(tmp_path), False)]
    assert fake.calls == [int(BLOCK_S) * 16000, 5 * 16000]  # never the whole recording
    assert len(words) == seconds
    assert words[int(BLOCK_S)].start == BLOCK_S and words[-1].text == "w4"


def test_pocketsphinx_refuses_other_languages_without_a_model() -> None:
    with pytest.raises(ConfigError, match="US English only"):
        PocketsphinxTranscriber(TranscribeSettings(language="de")).load()
    with pytest.raises(ModelUnavailable, match="/nowhere"):
        PocketsphinxTranscriber(TranscribeSettings(model="/nowhere")).load()


@pytest.mark.skipif(ESPEAK is None, reason=ESPEAK_MISSING)
def test_pocketsphinx_hears_words_where_they_were_said() -> None:
    audio = np.concatenate([silence(3.0), speech("seven"), silence(2.0)])
    words = list(PocketsphinxTranscriber(TranscribeSettings()).transcribe(
        [audio[i : i + 4000] for i in range(0, len(audio), 4000)]))
    assert words, "no speech found"
    assert words[0].start >= 2.5 and words[-1].end <= len(audio) / 16000


def test_pocketsphinx_takes_a_recording_of_whole_frames() -> None:
    """A recording that ends exactly on a detector frame (30 ms) once crashed the
    end of the stream (an mp3 of the eval set)."""
    audio = np.zeros(480 * 100, np.int16)
    assert list(PocketsphinxTranscriber(TranscribeSettings()).transcribe([audio])) == []
