"""Transcript windows: every word in a window, windows within their length, overlapping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.transcript import frame_at, transcript_windows
from rag.errors import ConfigError
from rag.transcribe import Segment


@st.composite
def speech(draw: st.DrawFn) -> list[Segment]:
    gaps = draw(st.lists(st.floats(0.0, 5.0), min_size=0, max_size=80))
    out, t = [], 0.0
    for i, gap in enumerate(gaps):
        t += gap
        length = draw(st.floats(0.05, 1.5))
        out.append(Segment(f"w{i}", round(t, 3), round(t + length, 3)))
        t += length
    return out


@given(speech(), st.floats(2.0, 60.0), st.floats(0.0, 0.9))
def test_windows_cover_every_word_in_order(segments: list[Segment], window: float,
                                           share: float) -> None:
    windows = transcript_windows(segments, window, window * share)
    covered = sorted({i for w in windows for i in range(w.first, w.last + 1)})
    assert covered == list(range(len(segments)))
    for w in windows:
        part = segments[w.first : w.last + 1]
        assert w.text == " ".join(s.text for s in part)
        assert w.start == part[0].start and w.end == max(s.end for s in part)
        assert all(s.start < w.start + window for s in part)
    assert [w.first for w in windows] == sorted({w.first for w in windows})


def test_windows_overlap_by_about_the_overlap() -> None:
    words = [Segment(f"w{i}", float(i), i + 0.8) for i in range(100)]
    windows = transcript_windows(words, 30.0, 5.0)
    assert [w.start for w in windows[:3]] == [0.0, 25.0, 50.0]
    assert windows[0].end == pytest.approx(29.8)


def test_bad_window_settings_are_named() -> None:
    with pytest.raises(ConfigError, match="transcribe.overlap_s"):
        transcript_windows([], 10.0, 10.0)


def test_frame_at_names_the_picture_on_screen() -> None:
    frames = [(1, 0.0), (2, 4.2), (3, 9.0)]
    assert [frame_at(frames, t) for t in (0.0, 4.1, 4.2, 20.0)] == [1, 1, 2, 3]
    assert frame_at([], 3.0) is None
