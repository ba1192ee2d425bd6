"""CTC decoding that keeps where each character was read and what the recogniser saw
between characters.

PP-OCR's recogniser scores every column of a line crop (8 px of the 48 px-high input)
for each symbol plus a CTC blank; decoding takes the best symbol per column, collapses
repeats and drops blanks. RapidOCR's decoder keeps only the text. This one produces the
same text and score and also, per character, the columns it was read at and, per pair
of neighbours, two signs of a space the argmax lost: the highest probability of the
space symbol in the columns between them, and their distance relative to the line's
usual character pitch. It works on the model's output array, so it is the same for
every runtime that computes that array (OpenVINO, onnxruntime, torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Below this many neighbour pairs a median pitch says little: pitch evidence is off (1.0).
MIN_PAIRS_FOR_PITCH = 4


@dataclass(frozen=True)
class Gap:
    """Evidence for a space between two neighbouring characters of a line.

    ``space_prob``: the recogniser's highest probability for the space symbol in the
    columns between them (0 when they are in adjacent columns). ``pitch``: their distance
    in columns over the line's median distance between neighbours (1.0 when unknown).
    """

    space_prob: float
    pitch: float = 1.0


@dataclass(frozen=True)
class CtcLine:
    """A decoded line: ``text`` and ``score`` exactly as RapidOCR's decoder gives them,
    each character's ``(x0, x1)`` as fractions of the crop's width, and ``gaps[i]``
    between ``text[i]`` and ``text[i + 1]``."""

    text: str
    score: float
    spans: tuple[tuple[float, float], ...]
    gaps: tuple[Gap, ...]


def decode_line(
    probs: np.ndarray, characters: Sequence[str], content_fraction: float = 1.0
) -> CtcLine:
    """Greedy CTC decoding of one line's ``(columns, symbols)`` probabilities.

    ``characters[0]`` is the CTC blank and ``characters[-1]`` the space (RapidOCR's
    layout). ``content_fraction`` is the share of the columns that the crop covers (the
    rest is padding up to the widest crop of the batch); spans are relative to the crop.
    """
    columns = probs.shape[0]
    index = probs.argmax(axis=1)
    best = probs.max(axis=1)
    keep = np.ones(columns, dtype=bool)
    keep[1:] = index[1:] != index[:-1]
    keep &= index != 0
    starts = np.flatnonzero(keep)
    text = "".join(characters[i] for i in index[starts])
    # As RapidOCR computes it (a float64 mean of the list), to the last bit.
    score = float(np.mean(best[starts].tolist())) if len(starts) else 0.0
    if not len(starts):
        return CtcLine(text, score, (), ())
    # A character's run of columns: from its first column to the last repeat of it.
    ends = starts.copy()
    for k, start in enumerate(starts):
        end = start
        while end + 1 < columns and index[end + 1] == index[start]:
            end += 1
        ends[k] = end
    width = max(1.0, columns * min(1.0, max(content_fraction, 1e-6)))

    def frac(col: float) -> float:
        return min(1.0, max(0.0, float(col) / width))

    pitch_unit = 0.0
    distances = np.diff(starts).astype(float)
    space = len(characters) - 1
    pairs = [d for d, a, b in zip(distances, text, text[1:], strict=False)
             if a != " " and b != " "]
    if len(pairs) >= MIN_PAIRS_FOR_PITCH:
        pitch_unit = float(np.median(pairs))
    gaps = []
    for k in range(len(starts) - 1):
        between = probs[ends[k] + 1 : starts[k + 1], space]
        prob = float(between.max()) if len(between) else 0.0
        pitch = float(distances[k]) / pitch_unit if pitch_unit > 0 else 1.0
        gaps.append(Gap(prob, pitch))
    spans = tuple(
        (frac(s), frac(e + 1)) for s, e in zip(starts.tolist(), ends.tolist(), strict=True)
    )
    return CtcLine(text, score, spans, tuple(gaps))


class PositionDecoder:
    """A drop-in for RapidOCR's ``CTCLabelDecode`` (its ``postprocess_op``) that returns
    ``(text, score, CtcLine)`` per line instead of ``(text, score)``.

    RapidOCR passes the third element through to its results untouched, so the backend
    finds each line's :class:`CtcLine` next to its box. Word boxes (RapidOCR's
    ``return_word_box``) are not supported: the backend never asks for them.
    """

    def __init__(self, characters: Sequence[str]) -> None:
        self.character = list(characters)

    def __call__(
        self, preds: np.ndarray, return_word_box: bool = False, **kwargs: Any
    ) -> list[tuple[str, float, CtcLine]]:
        ratios = kwargs.get("wh_ratio_list") or [1.0] * len(preds)
        widest = float(kwargs.get("max_wh_ratio") or 1.0)
        out = []
        for probs, ratio in zip(preds, ratios, strict=False):
            line = decode_line(probs, self.character, float(ratio) / widest)
            out.append((line.text, line.score, line))
        return out
