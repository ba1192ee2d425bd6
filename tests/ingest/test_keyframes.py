"""The keyframe decision on small frames: pure, so checked on arrays."""

from __future__ import annotations

import numpy as np

from ingest.loaders.keyframes import KeyframePicker, difference
from rag.settings import VideoSettings


def picture(seed: int, changed: float = 1.0) -> np.ndarray:
    """A 96x54 grey frame; ``changed`` of its pixels differ from picture(seed=0)."""
    base = np.full((54, 96), 255, np.uint8)
    if seed:
        rng = np.random.default_rng(seed)
        mask = rng.random(base.shape) < changed
        base[mask] = 0
    return base


def run(picker: KeyframePicker, frames: list[np.ndarray], step: float = 0.5) -> list[float]:
    out = []
    for i, frame in enumerate(frames):
        d = picker.offer(i * step, frame)
        if d is not None:
            out.append(d.start)
    return out


def test_difference_is_the_share_of_changed_pixels() -> None:
    assert difference(picture(0), picture(0)) == 0.0
    assert 0.08 < difference(picture(0), picture(1, 0.1)) < 0.12


def test_a_cut_is_taken_once_settled_and_dated_when_it_began() -> None:
    picker = KeyframePicker(VideoSettings(), duration=None)
    frames = [picture(0)] * 4 + [picture(1, 0.05), picture(2, 0.2)] + [picture(2, 0.2)] * 4
    # Change begins at 2.0 s (sample 4), settles at 3.0 s: one keyframe dated 2.0.
    assert run(picker, frames) == [0.0, 2.0]


def test_near_duplicates_are_never_kept_even_after_the_interval() -> None:
    picker = KeyframePicker(VideoSettings(max_interval_s=2.0), duration=None)
    assert run(picker, [picture(0)] * 20) == [0.0]
    picker = KeyframePicker(VideoSettings(max_interval_s=2.0, scene_threshold=0.5),
                            duration=None)
    # Small changes (1%) under the scene threshold: taken at the interval only.
    frames = [picture(0)] * 5 + [picture(3, 0.01)] * 10
    assert run(picker, frames) == [0.0, 2.5]


def test_the_frame_cap_and_the_minimum_gap_hold() -> None:
    frames = [picture(i % 7 + 1, 0.3) for i in range(40) for _ in range(2)]
    picker = KeyframePicker(VideoSettings(max_frames=5), duration=40.0)
    starts = run(picker, frames)
    assert len(starts) <= 5
    assert all(b - a >= 40.0 / 5 - 1.0 for a, b in zip(starts, starts[1:], strict=False))
