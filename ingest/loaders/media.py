"""Video and audio files, decoded with PyAV (FFmpeg inside its wheels).

A video yields its keyframes as pages of kind ``frame`` (pictures with a time range on
the video's timeline, OCR'd like any picture), then one ``transcript`` page with what
its sound track says; an audio file yields the transcript alone. Decoding is streamed:
the file is read where it is (:class:`ingest.blob.Blob`, a few KiB at a time), frames and
audio blocks are decoded one at a time from the container, only small grey frames are
compared (:mod:`ingest.loaders.keyframes`) and only the keyframe being built is held at
full size; audio reaches the transcriber as 16 kHz blocks. Memory does not grow with the
length of the file (benchmarks/bench_av.py hour).

Everything cheap is checked when the file is opened (container, streams, duration,
frame size); a file that is corrupt, truncated, too long, or whose streams cannot be
decoded fails with a message naming the file and the stream.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from ingest.blob import as_blob
from ingest.loaders.base import DocumentReader, LoadedPage, LoadRequest, read_ocr
from ingest.loaders.keyframes import KeyframePicker
from ingest.loaders.sniff import AUDIO_MIMES
from rag.errors import FileRejected, LimitExceeded
from rag.ocr.base import ocr_text
from rag.settings import VideoSettings
from rag.transcribe.base import SAMPLE_RATE, segments_text

_KIND = {
    "video/mp4": "MP4", "video/quicktime": "QuickTime", "video/webm": "WebM",
    "video/x-matroska": "Matroska", "video/x-msvideo": "AVI", "audio/wav": "WAV",
    "audio/mpeg": "MP3", "audio/mp4": "M4A", "audio/aac": "AAC", "audio/flac": "FLAC",
    "audio/ogg": "Ogg",
}
# A file whose streams end this much before the duration its header declares is
# truncated (the tail of the upload or copy is missing).
_TRUNCATED_SLACK_S = 1.0
_TRUNCATED_FRACTION = 0.9


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


class MediaReader(DocumentReader):
    """Keyframe pages, then a transcript page (see the module docstring)."""

    def __init__(self, request: LoadRequest) -> None:
        super().__init__(request)
        import av

        self._av = av
        self.video: VideoSettings = request.video or VideoSettings()
        self.kind = _KIND.get(request.mime, request.mime)
        self.blob = request.blob or as_blob(request.name, request.data)
        with self._open() as container:
            self.duration = self._duration(container)
            self.start_time = (container.start_time or 0) / 1_000_000
            video = [s for s in container.streams.video
                     if not s.disposition & av.stream.Disposition.attached_pic]
            self.video_index = video[0].index if video and request.mime not in AUDIO_MIMES \
                else None
            self.audio_index = container.streams.audio[0].index \
                if container.streams.audio else None
            if self.video_index is None and self.audio_index is None:
                raise FileRejected(
                    f"{self.name}: the {self.kind} file has no video or audio stream to read"
                )
            if self.video_index is not None:
                stream = container.streams[self.video_index]
                width, height = stream.codec_context.width, stream.codec_context.height
                if width * height > self.video.max_pixels:
                    raise LimitExceeded(
                        f"{self.name}: the video is {width}x{height} = {width * height:,} "
                        f"pixels a frame; the limit is {self.video.max_pixels:,} "
                        "(video.max_pixels)"
                    )
                self.video_codec = stream.codec_context.name
            if self.audio_index is not None:
                self.audio_codec = container.streams[self.audio_index].codec_context.name
        if self.duration is not None and self.duration > self.video.max_duration_s:
            raise LimitExceeded(
                f"{self.name}: the {self.kind} file lasts {self.duration:,.0f} s; the limit "
                f"is {self.video.max_duration_s:,.0f} s (video.max_duration_s)"
            )
        self._deadline = 0.0

    @contextlib.contextmanager
    def _open(self) -> Iterator[Any]:
        """The container, reading the file as a stream; closed with the file."""
        with self.blob.open() as f:
            try:
                container = self._av.open(f, mode="r")
            except Exception as exc:
                raise FileRejected(
                    f"{self.name}: not a readable {self.kind} file; corrupt or truncated "
                    f"({_describe(exc)})"
                ) from exc
            try:
                yield container
            finally:
                container.close()

    @staticmethod
    def _duration(container: Any) -> float | None:
        if container.duration:
            return float(container.duration) / 1_000_000
        for stream in container.streams:
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
        return None

    @property
    def page_count(self) -> int:
        """Pages expected (for progress): the frame cap bounds the keyframes."""
        frames = 0
        if self.video_index is not None:
            span = self.duration or self.video.max_interval_s
            frames = min(self.video.max_frames,
                         max(1, math.ceil(span / self.video.max_interval_s)))
        return frames + (1 if self.request.transcriber is not None else 0)

    def _check_time(self, t: float) -> None:
        if time.monotonic() > self._deadline:
            raise LimitExceeded(
                f"{self.name}: decoding and transcribing took longer than "
                f"{self.video.time_budget_s:,.0f} s, the budget per file "
                "(video.time_budget_s); split the file or raise the budget"
            )
        if t > self.video.max_duration_s:
            raise LimitExceeded(
                f"{self.name}: the {self.kind} file runs past {self.video.max_duration_s:,.0f}"
                " s, the limit (video.max_duration_s)"
            )

    def _pages(self) -> Iterator[LoadedPage]:
        self._deadline = time.monotonic() + self.video.time_budget_s
        frames: list[tuple[int, float]] = []
        if self.video_index is not None:
            for page in self._keyframes():
                assert page.start is not None
                frames.append((page.page, page.start))
                yield page
        transcriber = self.request.transcriber
        if self.audio_index is not None and transcriber is not None:
            segments = list(transcriber.transcribe(self._pcm()))
            text = segments_text(segments)
            if text:
                yield LoadedPage(page=0, kind="transcript", text=text, segments=segments,
                                 start=segments[0].start, end=segments[-1].end,
                                 frames=frames)
        self.blob.verify()  # what was decoded is what was hashed

    # --- pictures ------------------------------------------------------------------------

    def _stream_error(self, what: str, codec: str, exc: BaseException) -> FileRejected:
        return FileRejected(
            f"{self.name}: the {what} stream ({codec}) cannot be decoded; the file is "
            f"corrupt or truncated, or the codec is not supported ({_describe(exc)})"
        )

    def _small(self, frame: Any) -> np.ndarray:
        side = self.video.analysis_side
        scale = side / max(frame.width, frame.height)
        width = max(2, int(round(frame.width * scale)))
        height = max(2, int(round(frame.height * scale)))
        out: np.ndarray = frame.reformat(width=width, height=height, format="gray").to_ndarray()
        return out

    def _decode(self, index: int, what: str, codec: str) -> Iterator[Any]:
        """Frames of one stream, decoded one at a time from the file; a decoder error is
        the file's, named with the stream and its codec."""
        with self._open() as container:
            frames = container.decode(container.streams[index])
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    return
                except Exception as exc:
                    raise self._stream_error(what, codec, exc) from exc
                yield frame

    def _keyframes(self) -> Iterator[LoadedPage]:
        assert self.video_index is not None
        picker = KeyframePicker(self.video, self.duration)
        pending: tuple[float, Any] | None = None  # (start, PIL image) of the last keyframe
        page = 0
        next_sample = 0.0
        last_t = 0.0
        for frame in self._decode(self.video_index, "video", self.video_codec):
            if frame.time is None:
                continue
            t = max(0.0, float(frame.time) - self.start_time)
            last_t = max(last_t, t)
            if t < next_sample:
                continue
            next_sample = t + self.video.sample_interval_s
            self._check_time(t)
            decision = picker.offer(t, self._small(frame))
            if decision is None:
                continue
            if pending is not None:
                page += 1
                yield self._frame_page(page, pending[0], decision.start, pending[1])
            pending = (decision.start, frame.to_image())
        self._check_complete(last_t, "video")
        if pending is None:
            raise FileRejected(f"{self.name}: the video stream ({self.video_codec}) has no "
                               "decodable frames; the file is corrupt or truncated")
        # The last keyframe is on screen until the video ends.
        end = self.duration if self.duration is not None else last_t
        yield self._frame_page(page + 1, pending[0], end, pending[1])

    def _frame_page(self, page: int, start: float, end: float, image: Any) -> LoadedPage:
        boxes = read_ocr(self.request, image, page)
        return LoadedPage(page=page, kind="frame", text=ocr_text(boxes), boxes=boxes,
                          image=image, ocr=self.request.ocr is not None,
                          start=round(start, 3), end=round(max(end, start), 3))

    def _check_complete(self, last_t: float, what: str) -> None:
        """A truncated file usually decodes without an error and just stops early."""
        if self.duration is None:
            return
        if last_t + _TRUNCATED_SLACK_S < self.duration * _TRUNCATED_FRACTION:
            raise FileRejected(
                f"{self.name}: the {what} stream ends at {last_t:,.1f} s but the file "
                f"says it lasts {self.duration:,.1f} s; the file is truncated"
            )

    # --- sound ---------------------------------------------------------------------------

    def _pcm(self) -> Iterator[np.ndarray]:
        """The first audio stream as 16 kHz mono int16 blocks, silence-padded so that
        sample 0 is time 0 of the media's timeline."""
        assert self.audio_index is not None
        resampler = self._av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        first = True
        samples = 0
        for frame in self._decode(self.audio_index, "audio", self.audio_codec):
            if first and frame.time is not None:
                lead = float(frame.time) - self.start_time
                if lead > 0.01:
                    yield np.zeros(int(lead * SAMPLE_RATE), dtype=np.int16)
                    samples += int(lead * SAMPLE_RATE)
            first = False
            for out in resampler.resample(frame):
                block = out.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                samples += len(block)
                self._check_time(samples / SAMPLE_RATE)
                yield block
        for out in resampler.resample(None):
            yield out.to_ndarray().reshape(-1).astype(np.int16, copy=False)
        if first:
            raise FileRejected(f"{self.name}: the audio stream ({self.audio_codec}) has no "
                               "decodable samples; the file is corrupt or truncated")
        if self.video_index is None:  # a sound track may well end before its video
            self._check_complete(samples / SAMPLE_RATE, "audio")
