"""Videos and recordings end to end through the Pipeline: real PyAV, OCR, pocketsphinx,
MiniLM, BM25 and Qdrant Edge (offline profile)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline import Pipeline
from rag.payload import original_key
from rag.types import Filter
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
from tests.conftest import offline

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(ESPEAK is None, reason=ESPEAK_MISSING)]

SLIDE_TEXT = [["Quarterly results", "Revenue grew 12 percent"],
              ["Certificate rotation", "every ninety days"],
              ["Backups run nightly", "at two in the morning"]]


def slide_image(i: int) -> Image.Image:
    """Made when needed: module-level pictures would stay alive for the whole session
    (tests/pipeline/test_prepare.py counts live pictures)."""
    return slide(SLIDE_TEXT[i], font_size=34)


def talk() -> bytes:
    said = np.concatenate([speech("Welcome to the quarterly review."), silence(3.0),
                           speech("Rotate the certificates every ninety days."), silence(3.0)])
    seconds = len(said) / 16000
    shots = [Shot(slide_image(0), 4.0), Shot(slide_image(1), 5.0),
             Shot(slide_image(2), seconds - 9.0 + 1)]
    return make_video(shots, audio=said)


@pytest.fixture(scope="module")
def av_pipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    pipe = Pipeline(offline(tmp_path_factory.mktemp("av"), ingest={"workers": 0}))
    report = pipe.ingest_bytes("av", {
        "talks/review.mp4": talk(),
        "notes/memo.ogg": make_audio(np.concatenate([silence(1.0), speech(
            "The database listens on port five four three two.")]), fmt="ogg"),
        "docs/other.md": b"# Certificates\n\nOur certificate policy is in the wiki.\n",
    })
    assert not report.failed, report.summary()
    yield pipe
    pipe.close()


def test_what_was_shown_is_found_with_its_time(av_pipe: Pipeline) -> None:
    hits = av_pipe.search("av", "backups run nightly", flt=Filter(modality=["frame"]), limit=3)
    top = hits[0]
    assert top.source == "talks/review.mp4" and top.modality == "frame"
    assert top.start is not None and 8.9 <= top.start <= 9.6
    assert top.end is not None and top.end > top.start
    assert top.media and av_pipe.media_bytes(top.media)[:4] == b"RIFF"  # WebP keyframe
    js = top.to_json()
    assert js["start"] == top.start and js["end"] == top.end


def test_what_was_said_is_stored_as_timed_transcript(av_pipe: Pipeline) -> None:
    hits = av_pipe.search("av", "speech", flt=Filter(modality=["transcript"]), limit=10)
    by_source = {h.source: h for h in hits}
    assert set(by_source) == {"talks/review.mp4", "notes/memo.ogg"}
    memo = by_source["notes/memo.ogg"]
    assert memo.start is not None and memo.start >= 0.8 and memo.media is None
    video = by_source["talks/review.mp4"]
    assert video.media is not None  # the keyframe on screen when the speech began
    # Pages and pictures keep no time.
    (doc,) = av_pipe.search("av", "certificate policy wiki", flt=Filter(modality=["text"]), limit=1)
    assert doc.start is None and doc.end is None


def test_a_screenshot_of_a_slide_finds_the_video_and_the_time(av_pipe: Pipeline) -> None:
    shot = slide_image(1).resize((800, 450))
    hits = av_pipe.search("av", image=shot, limit=3)
    assert hits[0].source == "talks/review.mp4"
    assert hits[0].start is not None and 3.9 <= hits[0].start <= 4.6


def test_the_original_is_kept_for_playback_and_reingest_changes_nothing(
        av_pipe: Pipeline) -> None:
    (review,) = [d for d in av_pipe.documents("av") if d["source"] == "talks/review.mp4"]
    path, mime = av_pipe.original_file(original_key(review["doc_id"]))
    assert mime == "video/mp4" and path.stat().st_size > 1000
    report = av_pipe.ingest_bytes("av", {"talks/review.mp4": path.read_bytes()})
    assert [f.status for f in report.files] == ["unchanged"]


def test_a_broken_video_fails_alone(tmp_path: Path) -> None:
    pipe = Pipeline(offline(tmp_path, ingest={"workers": 0}))
    try:
        good = make_video([Shot(slide_image(0), 2.0)], audio=tone(2.0))
        report = pipe.ingest_bytes("c", {"ok.mp4": good, "cut.mp4": good[: len(good) // 2]})
        status = {f.source: (f.status, f.error) for f in report.files}
        assert status["ok.mp4"][0] == "added"
        assert status["cut.mp4"][0] == "failed" and "cut.mp4" in str(status["cut.mp4"][1])
    finally:
        pipe.close()
