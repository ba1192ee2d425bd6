"""Video and audio files through the loaders: real encodings made by PyAV."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from ingest.blob import FileBlob
from ingest.loaders import load_document, open_document, sniff
from ingest.loaders.base import LoadedDocument
from rag.errors import FileRejected, LimitExceeded
from rag.settings import IngestSettings, TranscribeSettings, VideoSettings
from rag.transcribe import PocketsphinxTranscriber
from tests.av_media import (
    ESPEAK,
    ESPEAK_MISSING,
    Shot,
    make_audio,
    make_video,
    silence,
    slide,
    speech,
    tone,
)


def slides() -> list[Shot]:
    """Made per test: module-level pictures would stay alive for the whole session (and
    tests/pipeline/test_prepare.py counts live pictures)."""
    return [Shot(slide(["Quarterly results", "Revenue grew 12 percent"]), 4),
            Shot(slide(["Rotate TLS certificates", "every ninety days"]), 5),
            Shot(slide(["Database port 5432"]), 4)]


def load(name: str, data: bytes, video: VideoSettings | None = None,
         transcriber: PocketsphinxTranscriber | None = None) -> LoadedDocument:
    return load_document(name, data, ingest=IngestSettings(), ocr=None, render_pages=True,
                         video=video or VideoSettings(), transcriber=transcriber)


@pytest.mark.parametrize(("fmt", "mime"), [
    ("mp4", "video/mp4"), ("mov", "video/quicktime"), ("webm", "video/webm"),
    ("mkv", "video/x-matroska"), ("avi", "video/x-msvideo"),
])
def test_videos_are_known_by_their_bytes_and_give_one_frame_per_slide(fmt: str,
                                                                      mime: str) -> None:
    data = make_video(slides(), fmt=fmt, audio=tone(13.0))
    assert sniff("renamed.bin", data) == mime
    doc = load(f"talk.{fmt}", data)
    frames = [p for p in doc.pages if p.kind == "frame"]
    assert [p.page for p in frames] == [1, 2, 3]
    starts = [p.start for p in frames]
    # Slide changes at 4 s and 9 s, found within one sample (0.5 s) of the cut.
    assert starts[0] == 0.0
    assert 4.0 <= starts[1] <= 4.6 and 9.0 <= starts[2] <= 9.6, starts
    # Ranges tile the timeline: each frame ends where the next starts, the last at the end.
    assert [p.end for p in frames[:-1]] == starts[1:]
    assert frames[-1].end == pytest.approx(13.0, abs=0.3)
    assert all(p.image is not None and p.image.size == (640, 360) for p in frames)


@pytest.mark.parametrize(("fmt", "mime"), [
    ("wav", "audio/wav"), ("mp3", "audio/mpeg"), ("m4a", "audio/mp4"),
    ("flac", "audio/flac"), ("ogg", "audio/ogg"),
])
def test_audio_formats_are_known_by_their_bytes(fmt: str, mime: str) -> None:
    assert sniff("x.bin", make_audio(tone(1.0), fmt=fmt)) == mime


def test_a_still_picture_gives_one_frame_and_the_interval_adds_changed_ones() -> None:
    term = [slide([f"$ step {i}"] + [f"line {j}" for j in range(i)], background="black",
                  mono=True, font_size=18) for i in range(4)]
    # Each screen adds one short line: under the scene threshold, over the duplicate one.
    shots = [Shot(img, 6) for img in term]
    video = VideoSettings(max_interval_s=5.0, scene_threshold=0.5)
    frames = [p for p in load("term.mp4", make_video(shots), video).pages]
    assert len(frames) == 4
    still = load("still.mp4", make_video([Shot(term[0], 20)]), video).pages
    assert len(still) == 1 and still[0].end == pytest.approx(20.0, abs=0.3)


def test_max_frames_caps_the_keyframes() -> None:
    shots = [Shot(slide([f"Slide number {i}", "x" * (i + 1)]), 1) for i in range(8)]
    pages = load("many.mp4", make_video(shots), VideoSettings(max_frames=3)).pages
    assert 1 <= len(pages) <= 3
    assert pages[-1].end == pytest.approx(8.0, abs=0.3)


def test_limits_fail_before_decoding_with_the_setting_named() -> None:
    data = make_video(slides())
    with pytest.raises(LimitExceeded, match=r"talk.mp4.*video.max_duration_s"):
        load("talk.mp4", data, VideoSettings(max_duration_s=10))
    with pytest.raises(LimitExceeded, match=r"talk.mp4.*640x360.*video.max_pixels"):
        load("talk.mp4", data, VideoSettings(max_pixels=320 * 240))


def test_a_truncated_video_fails_alone_with_its_name() -> None:
    data = make_video(slides(), audio=tone(13.0))
    for cut in (len(data) // 2, 4000):
        with pytest.raises(FileRejected, match=r"^cut.mp4: .*(corrupt|truncated)"):
            load("cut.mp4", data[:cut])


def test_garbage_named_like_a_video_is_corrupt_not_unsupported() -> None:
    with pytest.raises(FileRejected, match=r"clip.mp4: the name says MP4"):
        sniff("clip.mp4", b"\x00\x01garbage" * 50)
    # Magic bytes of an MP4, then noise: the container cannot be read.
    noise = b"\x00\x00\x00\x18ftypisom" + bytes(np.random.default_rng(1).integers(
        0, 255, 5000, dtype=np.uint8))
    with pytest.raises(FileRejected, match=r"^noise.mp4: .*MP4"):
        load("noise.mp4", noise)


def test_an_audio_file_without_transcriber_has_no_pages() -> None:
    assert load("rec.wav", make_audio(tone(2.0))).pages == []


@pytest.mark.skipif(ESPEAK is None, reason=ESPEAK_MISSING)
def test_speech_is_transcribed_with_times_on_the_recording() -> None:
    said = np.concatenate([silence(2.0), speech("Rotate the certificates every ninety days."),
                           silence(1.0)])
    doc = load("note.flac", make_audio(said, fmt="flac"),
               transcriber=PocketsphinxTranscriber(TranscribeSettings()))
    (page,) = doc.pages
    assert page.kind == "transcript" and page.segments
    # The speech starts after two seconds of silence, and ends before the recording does.
    assert page.segments[0].start >= 1.8
    assert page.segments[-1].end <= len(said) / 16000 + 0.1
    assert [s.start for s in page.segments] == sorted(s.start for s in page.segments)
    assert page.text == " ".join(s.text for s in page.segments)


def raw_video(path: Path, seconds: int = 60, fps: int = 5) -> None:
    """An uncompressed AVI (~35 MB a minute at 320x240): large on disk, cheap to make and
    decode, a new picture every ten seconds."""
    import av

    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("rawvideo", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(seconds * fps):
            shade = (i // (10 * fps)) * 40
            frame = av.VideoFrame.from_ndarray(np.full((240, 320, 3), shade, np.uint8),
                                               format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_a_video_is_decoded_from_its_file_without_holding_it_in_memory(
        tmp_path: Path) -> None:
    path = tmp_path / "screen.avi"
    raw_video(path)
    size = path.stat().st_size
    assert size > 30_000_000
    # Over the documents' limit, which does not apply to streamed media.
    ingest = IngestSettings(max_file_bytes=1_000_000)
    tracemalloc.start()
    try:
        reader = open_document("screen.avi", FileBlob.at("screen.avi", str(path)),
                               ingest=ingest, ocr=None, render_pages=True,
                               video=VideoSettings(), transcriber=None)
        frames = [(p.start, p.end) for p in reader.iter_pages()]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(frames) == 6 and frames[0][0] == 0.0 and frames[-1][1] == 60.0
    # Python-side buffers stay at a few MiB (a 1 MiB read buffer, one 320x240 picture);
    # reading the file into memory would peak above its 35 MB.
    assert peak < size / 8, (peak, size)
