"""The example corpus's video and recording: one short narrated slide video and one
audio memo, made with PyAV and espeak-ng (tests/av_media.py).

    python examples/make_av_examples.py     # -> examples/corpus/*.mp4, *.mp3

Deterministic for a given PyAV (FFmpeg) and espeak-ng version; the committed files were
made with PyAV 18.1 and espeak-ng 1.51.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.av_media import Shot, make_audio, make_video, silence, slide, speech  # noqa: E402


def main() -> None:
    corpus = HERE / "corpus"
    said = np.concatenate([
        silence(0.5), speech("The office coffee machine is descaled every second Monday."),
        silence(1.0), speech("Use the blue descaler tablets from the kitchen cupboard."),
        silence(0.5)])
    seconds = len(said) / 16000
    shots = [Shot(slide(["Coffee machine care", "Kitchen, third floor"], font_size=34), 4.0),
             Shot(slide(["Descaling schedule", "every second Monday, 8:00"], font_size=34),
                  max(4.0, seconds - 4.0))]
    (corpus / "coffee_machine_descaling.mp4").write_bytes(
        make_video(shots, audio=np.concatenate([said, silence(0.3)])))
    memo = np.concatenate([silence(0.5), speech(
        "Parking memo. Visitors get a garage code from reception; the code changes "
        "every Friday."), silence(0.5)])
    (corpus / "parking_garage_memo.mp3").write_bytes(make_audio(memo, fmt="mp3"))
    for p in sorted(corpus.glob("*.mp[34]")):
        print(f"{p.stat().st_size:>9,d}  {p}")


if __name__ == "__main__":
    main()
