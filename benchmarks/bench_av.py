"""Video and audio: keyframe speed, transcription real-time factor and WER, peak RSS.

    python benchmarks/bench_av.py keyframes      # video seconds decoded per wall second
    python benchmarks/bench_av.py transcribe     # RTF and WER per transcription backend
    python benchmarks/bench_av.py hour           # peak RSS ingesting a 1-hour 1080p video

Media are made here (tests/av_media.py). The hour-long video is cheap to make on two
cores: 1080p at 1 frame a second, a new slide every two minutes, and a sound track that
is silent except for a sentence every ten minutes (so it measures decoding and the
stage plumbing, not an hour of speech recognition; the RTF above prices that). Its sound
is uncompressed by default (``--format mkv-pcm``), so the file is ~350 MB, over the
200 MB that documents may have: it is streamed, and a 2-minute video of the same kind is
measured beside it to show that memory does not grow with the file.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ingest.loaders import open_document  # noqa: E402
from rag.errors import MmragError  # noqa: E402
from rag.settings import IngestSettings, TranscribeSettings, VideoSettings  # noqa: E402
from rag.transcribe import build_transcriber  # noqa: E402
from tests.av_media import Shot, make_video, silence, slide, speech  # noqa: E402

SCRIPT = [
    "Rotate the certificates every ninety days.",
    "Nightly backups start at two in the morning.",
    "The database listens on port five four three two.",
    "Deploys are allowed on Tuesday and Thursday only.",
    "Page the secondary after fifteen minutes.",
    "The office network uses a private resolver.",
    "Restores are tested every Friday afternoon.",
    "Canary traffic starts at five percent of requests.",
]


def keyframes(seconds: float, size: tuple[int, int], fps: int) -> None:
    shots = [Shot(slide([f"Slide {i}", f"fact number {i * 13}"], size=size,
                        font_size=size[1] // 12), 10.0) for i in range(int(seconds // 10))]
    t = time.perf_counter()
    data = make_video(shots, fps=fps)
    made = time.perf_counter() - t
    reader = open_document("bench.mp4", data, ingest=IngestSettings(), ocr=None,
                           render_pages=True, video=VideoSettings(), transcriber=None)
    t = time.perf_counter()
    pages = list(reader.iter_pages())
    wall = time.perf_counter() - t
    print(f"keyframes {size[0]}x{size[1]} {fps} fps, {seconds:.0f} s video "
          f"({len(data) / 1e6:.1f} MB, made in {made:.1f} s): {len(pages)} keyframes in "
          f"{wall:.2f} s = {seconds / wall:.1f} video s per wall s")


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


def transcribe() -> None:
    import jiwer

    parts, reference = [], []
    for sentence in SCRIPT:
        parts += [speech(sentence), silence(0.7)]
        reference.append(sentence)
    audio = np.concatenate(parts)
    seconds = len(audio) / 16000
    for backend in ("pocketsphinx", "whisper"):
        engine = build_transcriber(TranscribeSettings(backend=backend))
        assert engine is not None
        try:
            engine.load()
        except MmragError as exc:
            print(f"{backend}: not measured here: {exc}")
            continue
        t = time.perf_counter()
        words = list(engine.transcribe([audio[i : i + 16000] for i in
                                        range(0, len(audio), 16000)]))
        wall = time.perf_counter() - t
        hyp = _words(" ".join(w.text for w in words))
        wer = jiwer.wer(_words(" ".join(reference)), hyp)
        print(f"{backend}: {seconds:.0f} s of espeak-ng speech in {wall:.1f} s: "
              f"RTF {wall / seconds:.2f}; WER {wer:.2f}")
        print(f"  heard: {hyp[:160]}")


def _ingest_rss(video: Path, data_dir: Path) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MB) of ``mmrag ingest`` of one file, in its own process
    (one file is prepared in the ingesting process itself, no worker pool)."""
    # VmHWM, not ru_maxrss: getrusage keeps the maximum across fork+exec, so a child
    # of this process (which just made a video of hundreds of MB in memory) would
    # report this process's size; the high-water mark belongs to the new image.
    code = ("import re, runpy, sys\n"
            "sys.argv = ['mmrag'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('cli.main', run_name='__main__')\n"
            "finally:\n"
            "    hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())\n"
            "    print('PEAK', hwm.group(1) if hwm else 0, file=sys.stderr)\n")
    t = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-c", code, "ingest", str(video), "--collection", "h", "--profile",
         "offline", "--data-dir", str(data_dir), "--json"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t
    found = re.findall(r"PEAK (\d+)", run.stderr)
    peak = int(found[-1]) / 1024 if found else float("nan")
    ok = "ok" if run.returncode == 0 else f"FAILED: {run.stdout[-300:]} {run.stderr[-300:]}"
    return wall, peak, ok


def _talk(minutes: float, out: Path, fmt: str) -> float:
    seconds = minutes * 60
    shots = [Shot(slide([f"Chapter {i}", "a slide shown for two minutes"], size=(1920, 1080),
                        font_size=80), 120.0) for i in range(max(1, int(seconds // 120)))]
    pcm = []
    for i in range(max(1, int(seconds // 600))):
        clip = speech(SCRIPT[i % len(SCRIPT)])
        pcm += [clip, silence(min(600.0, seconds) - len(clip) / 16000)]
    t = time.perf_counter()
    make_video(shots, fps=1, audio=np.concatenate(pcm), fmt=fmt, out=str(out))
    return time.perf_counter() - t


def hour(minutes: float, fmt: str) -> None:
    """Peak RSS of a short and a long video of the same kind: memory must not grow with
    the length (or the size) of the file."""
    with tempfile.TemporaryDirectory() as tmp:
        print(f"| video ({fmt}, 1080p, 1 fps) | file size | made in | ingest wall | "
              "peak RSS | result |")
        print("|---|---|---|---|---|---|")
        for length in (2.0, minutes):
            video = Path(tmp) / f"talk-{length:.0f}.{fmt.split('-')[0]}"
            made = _talk(length, video, fmt)
            size = video.stat().st_size / 1e6
            wall, peak, ok = _ingest_rss(video, Path(tmp) / f"data-{length:.0f}")
            print(f"| {length:.0f} min | {size:,.0f} MB | {made:.0f} s | {wall:.0f} s | "
                  f"{peak:,.0f} MB | {ok} |")
            video.unlink()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("what", choices=["keyframes", "transcribe", "hour"])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--format", default="mkv-pcm", choices=["mkv-pcm", "mp4", "mkv"],
                    help="mkv-pcm: uncompressed 48 kHz sound, ~350 MB an hour")
    args = ap.parse_args()
    if args.what == "keyframes":
        keyframes(120, (1280, 720), 25)
        keyframes(120, (1920, 1080), 25)
    elif args.what == "transcribe":
        transcribe()
    else:
        hour(args.minutes, args.format)


if __name__ == "__main__":
    main()
