"""Transcript chunks: windows of speech with overlap, each with its time range.

Pure: segments (words or phrases with times) in, windows out. A window holds the
segments that start within ``window_s`` of its first one (always at least one); the next
window starts at the first segment starting ``overlap_s`` before the previous window's
end, and always at least one segment later, so every segment is in some window and a
sentence cut by a window edge is whole in the next one.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from rag.errors import ConfigError
from rag.transcribe.base import Segment


@dataclass(frozen=True)
class Window:
    text: str
    start: float
    end: float
    first: int  # index of its first segment
    last: int  # index of its last segment (inclusive)


def transcript_windows(segments: Sequence[Segment], window_s: float,
                       overlap_s: float) -> list[Window]:
    if window_s <= 0:
        raise ConfigError(f"transcribe.window_s must be above 0, got {window_s}")
    if overlap_s < 0 or overlap_s >= window_s:
        raise ConfigError(
            f"transcribe.overlap_s must be at least 0 and below transcribe.window_s "
            f"({window_s}), got {overlap_s}"
        )
    items = [s for s in segments if s.text.strip()]
    out: list[Window] = []
    first = 0
    while first < len(items):
        begin = items[first].start
        last = first
        while last + 1 < len(items) and items[last + 1].start < begin + window_s:
            last += 1
        part = items[first : last + 1]
        end = max(s.end for s in part)
        out.append(Window(" ".join(s.text.strip() for s in part), begin, end, first, last))
        if last + 1 >= len(items):
            break
        cut = end - overlap_s
        nxt = first + 1
        while nxt <= last and items[nxt].start < cut:
            nxt += 1
        first = nxt
    return out


def frame_at(frames: Sequence[tuple[int, float]], t: float) -> int | None:
    """The page of the keyframe on screen at ``t`` seconds (``frames`` sorted by start),
    or None when there is none yet."""
    starts = [start for _, start in frames]
    i = bisect.bisect_right(starts, t + 1e-6) - 1
    return frames[i][0] if i >= 0 else (frames[0][0] if frames else None)
