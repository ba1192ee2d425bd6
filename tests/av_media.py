"""Video and audio files made on the fly with PyAV (and espeak-ng for speech).

Used by the tests, the eval media (eval/make_av_set.py), the example corpus and the
benchmarks, so every one of them reads real encodings (H.264/AAC in MP4, VP9/Opus in
WebM, MP3, FLAC, WAV...) made deterministically: the same arguments give the same bytes.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
MONO = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")
ESPEAK = shutil.which("espeak-ng")
ESPEAK_MISSING = ("espeak-ng is not installed: `make espeak` (apt-get install espeak-ng) "
                  "installs it")


def _font(size: int, mono: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = MONO if mono else FONT
    return ImageFont.truetype(str(path), size) if path.exists() else ImageFont.load_default(size)


def slide(lines: Sequence[str], size: tuple[int, int] = (640, 360), *,
          background: str = "white", mono: bool = False, font_size: int = 30) -> Image.Image:
    """A slide (or a terminal screen with ``mono`` on black) with text lines."""
    img = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(img)
    colour = "white" if background in ("black", "#101010") else "black"
    font = _font(font_size, mono)
    y = font_size
    for line in lines:
        draw.text((font_size, y), line, fill=colour, font=font)
        y += int(font_size * 1.6)
    return img


def speech(text: str, voice: str = "en-us", rate: int = 150) -> np.ndarray:
    """``text`` spoken by espeak-ng, as 16 kHz mono int16 (raises when it is missing)."""
    if ESPEAK is None:
        raise RuntimeError(ESPEAK_MISSING)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run([ESPEAK, "-v", voice, "-s", str(rate), "-w", str(wav), text],
                       check=True, capture_output=True)
        return decode_pcm(wav.read_bytes())


def tone(seconds: float, freq: float = 440.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)


def silence(seconds: float, rate: int = 16000) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.int16)


def decode_pcm(data: bytes, rate: int = 16000) -> np.ndarray:
    """Any audio file's first stream as mono int16 at ``rate``."""
    with av.open(io.BytesIO(data)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        out = [f.to_ndarray().reshape(-1) for frame in container.decode(audio=0)
               for f in resampler.resample(frame)]
        out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.int16) if out else np.zeros(0, np.int16)


@dataclass(frozen=True)
class Shot:
    """A picture shown for ``seconds``."""

    image: Image.Image
    seconds: float


_VIDEO = {"mp4": ("libx264", "aac", "yuv420p"), "mov": ("libx264", "aac", "yuv420p"),
          "mkv": ("libx264", "libopus", "yuv420p"), "webm": ("libvpx-vp9", "libopus", "yuv420p"),
          "avi": ("mpeg4", "libmp3lame", "yuv420p"),
          # Uncompressed 48 kHz sound: big files that are cheap to make (benchmarks).
          "mkv-pcm": ("libx264", "pcm_s16le", "yuv420p")}
_AUDIO = {"wav": "pcm_s16le", "mp3": "libmp3lame", "m4a": "aac", "flac": "flac",
          "ogg": "libopus"}
_FORMAT = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "mkv-pcm": "matroska",
           "webm": "webm", "avi": "avi",
           "wav": "wav", "mp3": "mp3", "m4a": "ipod", "flac": "flac", "ogg": "ogg"}


def _write_audio(container: av.container.OutputContainer, stream: av.AudioStream,
                 pcm: np.ndarray, rate: int) -> None:
    frame_size = stream.codec_context.frame_size or 1024
    for i in range(0, len(pcm), frame_size):
        block = pcm[i : i + frame_size]
        if len(block) < frame_size and stream.codec_context.frame_size:
            block = np.concatenate([block, np.zeros(frame_size - len(block), np.int16)])
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = i
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def make_video(shots: Sequence[Shot], *, fmt: str = "mp4", fps: int = 5,
               audio: np.ndarray | None = None, rate: int = 16000,
               size: tuple[int, int] | None = None, out: str | None = None) -> bytes:
    """A video showing ``shots`` in turn, with ``audio`` (16 kHz mono int16) as its sound
    track when given. Small and fast: a few frames a second, one keyframe a second.
    With ``out`` the video is written to that file (and ``b""`` returned)."""
    vcodec, acodec, pix = _VIDEO[fmt]
    width, height = size or shots[0].image.size
    buf = io.BytesIO()
    with av.open(out or buf, mode="w", format=_FORMAT[fmt]) as container:
        stream = container.add_stream(vcodec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix
        stream.gop_size = fps
        if vcodec == "libx264":
            stream.options = {"preset": "ultrafast", "tune": "stillimage"}
        elif vcodec == "libvpx-vp9":
            stream.options = {"deadline": "realtime", "cpu-used": "8"}
        astream = None
        if audio is not None:
            arate = 48000 if acodec == "libopus" or fmt == "mkv-pcm" else rate
            astream = container.add_stream(acodec, rate=arate)
            astream.layout = "mono"
            if arate != rate:
                audio = _resample(audio, rate, arate)
            rate = arate
        index = 0
        for shot in shots:
            img = shot.image if shot.image.size == (width, height) else \
                shot.image.resize((width, height))
            vf = av.VideoFrame.from_image(img).reformat(format=pix)
            for _ in range(max(1, round(shot.seconds * fps))):
                vf.pts = index
                vf.time_base = Fraction(1, fps)
                for packet in stream.encode(vf):
                    container.mux(packet)
                index += 1
        for packet in stream.encode(None):
            container.mux(packet)
        if astream is not None and audio is not None:
            _write_audio(container, astream, audio, rate)
    return b"" if out else buf.getvalue()


def _resample(pcm: np.ndarray, src: int, dst: int) -> np.ndarray:
    n = int(len(pcm) * dst / src)
    return np.interp(np.linspace(0, len(pcm) - 1, n), np.arange(len(pcm)), pcm
                     ).astype(np.int16)


def make_audio(pcm: np.ndarray, *, fmt: str = "wav", rate: int = 16000) -> bytes:
    """A recording of ``pcm`` (16 kHz mono int16) as a ``fmt`` file."""
    codec = _AUDIO[fmt]
    out_rate = 48000 if codec == "libopus" else rate
    if out_rate != rate:
        pcm = _resample(pcm, rate, out_rate)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=_FORMAT[fmt]) as container:
        stream = container.add_stream(codec, rate=out_rate)
        stream.layout = "mono"
        _write_audio(container, stream, pcm, out_rate)
    return buf.getvalue()
