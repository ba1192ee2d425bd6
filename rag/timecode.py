"""Times on a video's or recording's timeline as people write them: ``m:ss``."""

from __future__ import annotations


def clock(seconds: float | None) -> str:
    """``75.4`` -> ``1:15``; ``3725`` -> ``1:02:05``; None -> ``""``. Floors, so the
    time shown is never after the moment it names."""
    if seconds is None:
        return ""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def time_range(start: float | None, end: float | None) -> str:
    """``1:15-1:45`` (or one time when both round to the same second); "" without."""
    if start is None:
        return ""
    a, b = clock(start), clock(end if end is not None else start)
    return a if a == b else f"{a}-{b}"
