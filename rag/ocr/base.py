"""The OCR protocol and the pure geometry shared by every backend.

A backend only has to turn an image into :class:`~rag.types.OcrBox` lines; turning lines
into reading order and into page text (with each line's character span, which chunking
needs to attach boxes to chunks) lives here once, so all backends produce the same text
for the same lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from rag.types import OcrBox

if TYPE_CHECKING:
    from PIL import Image

# Two lines are on the same row when they overlap vertically by at least this share of
# the shorter one's height. Half a line tolerates slightly skewed scans without merging
# consecutive lines of normal line spacing.
ROW_OVERLAP = 0.5


@runtime_checkable
class OcrEngine(Protocol):
    """Reads the text lines of an image.

    ``read`` returns lines in reading order, boxes normalised to 0..1 of the image it
    was given, confidences in 0..1, and no lines below the backend's minimum confidence.
    Implementations must be safe to call from several threads.
    """

    def read(self, image: Image.Image) -> list[OcrBox]: ...


def quad_to_box(
    points: Iterable[Sequence[float]], width: int, height: int
) -> tuple[float, float, float, float]:
    """Axis-aligned ``[x0, y0, x1, y1]`` in 0..1 around a (possibly rotated) quadrilateral.

    Detectors return four corners in pixels; citations only need the enclosing rectangle,
    and normalised coordinates stay valid for any rescaled copy of the image.
    """
    pts = [(float(p[0]), float(p[1])) for p in points]
    if not pts or width <= 0 or height <= 0:
        return (0.0, 0.0, 0.0, 0.0)
    xs = [x for x, _ in pts]
    ys = [y for _, y in pts]

    def clamp(v: float) -> float:
        return min(1.0, max(0.0, v))

    return (
        clamp(min(xs) / width),
        clamp(min(ys) / height),
        clamp(max(xs) / width),
        clamp(max(ys) / height),
    )


def same_row(a: OcrBox, b: OcrBox) -> bool:
    """Whether two lines sit side by side (a table row, two columns, label and value)."""
    overlap = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    shorter = min(a.box[3] - a.box[1], b.box[3] - b.box[1])
    if shorter <= 0:
        return overlap >= 0 and abs(a.box[1] - b.box[1]) < 1e-9
    return overlap >= ROW_OVERLAP * shorter


def reading_order(boxes: Iterable[OcrBox]) -> list[OcrBox]:
    """Lines sorted into rows top to bottom, each row left to right.

    Detectors sort by the top-left corner with a fixed pixel tolerance, which breaks on
    slightly skewed scans and on lines of different heights in one row; grouping by
    vertical overlap does not. Multi-column layouts still read row by row.
    """
    rows: list[list[OcrBox]] = []
    for line in sorted(boxes, key=lambda b: ((b.box[1] + b.box[3]) / 2, b.box[0])):
        if rows and any(same_row(line, other) for other in rows[-1]):
            rows[-1].append(line)
        else:
            rows.append([line])
    rows.sort(key=lambda row: min(b.box[1] for b in row))
    return [b for row in rows for b in sorted(row, key=lambda b: b.box[0])]


def ocr_layout(boxes: Sequence[OcrBox]) -> tuple[str, list[tuple[int, int]]]:
    """Page text from lines (in the order given) and each line's ``(start, end)`` in it.

    Lines on the same row are joined with a space (a table row reads as one line), other
    lines with a newline. The spans let chunking attach to each text chunk exactly the
    boxes whose text it contains.
    """
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    prev: OcrBox | None = None
    for line in boxes:
        if prev is not None:
            sep = " " if same_row(prev, line) and line.box[0] >= prev.box[0] else "\n"
            parts.append(sep)
            pos += len(sep)
        parts.append(line.text)
        spans.append((pos, pos + len(line.text)))
        pos += len(line.text)
        prev = line
    return "".join(parts), spans


def ocr_text(boxes: Sequence[OcrBox]) -> str:
    """The text of OCR lines as one string, in the order given (see :func:`ocr_layout`)."""
    return ocr_layout(boxes)[0]


def is_blank(image: Image.Image, max_range: int) -> bool:
    """True when the image is one flat colour: a blank scanned page, an empty render.

    Measured as the spread of grey levels (max - min) on a thumbnail, which averages
    scanner noise away but keeps even one short line of text (a dark stroke stays far
    from the background): so only pages with nothing at all on them skip OCR.
    """
    thumb = image.convert("L")
    thumb.thumbnail((1024, 1024))
    low, high = thumb.getextrema()  # one band: (min, max)
    return float(high) - float(low) <= max_range  # type: ignore[arg-type]


class SkipBlank:
    """An :class:`OcrEngine` that answers ``[]`` for blank images without running the
    wrapped engine: a 2,000-page blank scan costs seconds, not the detector's minutes."""

    def __init__(self, engine: OcrEngine, max_range: int) -> None:
        self.engine = engine
        self.max_range = max_range

    def load(self) -> None:
        load = getattr(self.engine, "load", None)
        if load is not None:
            load()

    def read(self, image: Image.Image) -> list[OcrBox]:
        if is_blank(image, self.max_range):
            return []
        return self.engine.read(image)
