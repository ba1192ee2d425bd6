"""Which frames of a video to keep: a pure decision on small grey frames.

:class:`KeyframePicker` is fed one small frame per sample (every
``video.sample_interval_s``) and says which ones start a new keyframe. A picture change
(a slide or scene change) is the share of pixels whose grey level moved by more than
:data:`PIXEL_DELTA` since the current keyframe passing ``scene_threshold``; the frame
is taken once the picture has settled (the next sample hardly differs), so a fade or a
slide transition is not caught half way, while the keyframe's ``start`` is when the
change began. At least every ``max_interval_s`` a frame is taken anyway (slow
scrolling, typing in a terminal) unless it is a near-duplicate of the current
keyframe. With a known duration, keyframes are at least ``duration / max_frames``
apart, and never more than ``max_frames`` are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag.settings import VideoSettings

#: Grey levels a pixel must move by to count as changed: above video compression noise.
#: (A mean difference was tried first: a new slide of text on white moved the mean by
#: only ~3 of 255, a terminal's new line by ~1, closer to noise than to a cut.)
PIXEL_DELTA = 24


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Share (0..1) of the pixels of two equally sized grey frames that changed: a new
    slide of text changes ~5% of a 96-pixel-wide frame, a terminal's new line ~1.4%."""
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16)) > PIXEL_DELTA))


@dataclass
class Decision:
    """Take this sample as a new keyframe starting at ``start`` seconds."""

    start: float


class KeyframePicker:
    def __init__(self, video: VideoSettings, duration: float | None) -> None:
        self.video = video
        self.min_gap = (duration / video.max_frames
                        if duration and video.max_frames > 0 else 0.0)
        self.kept = 0
        self._key: np.ndarray | None = None  # the current keyframe's small frame
        self._key_start = 0.0
        self._previous: np.ndarray | None = None
        self._change_at: float | None = None  # when the picture began to differ

    def offer(self, t: float, small: np.ndarray) -> Decision | None:
        """A decision for the sample at ``t`` seconds, or None to skip it."""
        previous, self._previous = self._previous, small
        if self._key is None:
            return self._take(t, small, t)
        if self.kept >= self.video.max_frames:
            return None
        to_key = difference(small, self._key)
        if to_key <= self.video.duplicate_threshold:
            self._change_at = None  # back to (or still) the current picture
        elif to_key > self.video.scene_threshold and self._change_at is None:
            self._change_at = t
        if t - self._key_start < self.min_gap:
            return None
        if self._change_at is not None:
            settled = previous is not None and (
                difference(small, previous) <= self.video.scene_threshold / 2)
            if settled:
                return self._take(t, small, self._change_at)
        if (t - self._key_start >= self.video.max_interval_s
                and to_key > self.video.duplicate_threshold):
            return self._take(t, small, t)
        return None

    def _take(self, t: float, small: np.ndarray, start: float) -> Decision:
        self._key = small
        self._key_start = t
        self._change_at = None
        self.kept += 1
        return Decision(start=max(0.0, start))
