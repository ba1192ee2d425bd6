"""Word repair on the real recogniser: the issue's glued lines, rendered in fonts and
sizes where PP-OCR drops their spaces, come back as words; protected tokens stay whole;
stored page text and word boxes follow. One engine per module, a few seconds per image.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from ingest.loaders import load_document
from rag.ocr import RapidOcr, ocr_text
from rag.settings import IngestSettings, OcrSettings
from tests.ingest.files import encode, scan_like, scanned_pdf

FONTS = Path("/usr/share/fonts/truetype")
LINES = [
    "INC-2291 postmortem: internal DNS saw about 9,000 to 61,000 queries per second, and",
    "tee - read from standard input and write to standard output and files",
    "append to the given FILEs, do not overwrite; set behavior on write error",
    "--output-error[=MODE] /usr/local/bin https://example.com/a_b camelCase v2.14.1 10ms",
]
PHRASES = [  # compared in lower case: "DNs" or "FIlEs" are misreads, not glue
    "inc-2291 postmortem", "dns saw about 9,000 to", "queries per second, and",
    "read from standard input and write to standard output and files",
    "append to the given files, do not overwrite", "set behavior on write error",
]
PROTECTED = ["--output-error[=mode]", "/usr/local/bin", "https://example.com/a_b", "camelcase",
             "v2.14.1", "10ms"]
# Font and pixel size pairs where the recogniser, left alone, glued most of these words.
CASES = [
    ("dejavu/DejaVuSans.ttf", 14, False),
    ("liberation/LiberationSans-Regular.ttf", 18, False),
    ("dejavu/DejaVuSerif.ttf", 14, True),
    ("liberation/LiberationSerif-Regular.ttf", 18, True),
]


def render(rel: str, size: int, scan: bool = False) -> Image.Image:
    path = FONTS / rel
    if not path.exists():
        pytest.skip(f"font {path} is not installed")
    font = ImageFont.truetype(str(path), size)
    width = int(max(font.getlength(line) for line in LINES)) + 2 * size
    img = Image.new("RGB", (width, size * 2 + len(LINES) * int(size * 1.6)), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(LINES):
        draw.text((size, size + i * int(size * 1.6)), line, fill=(20, 20, 20), font=font)
    return scan_like(img) if scan else img


@pytest.fixture(scope="module")
def repaired() -> RapidOcr:
    engine = RapidOcr(OcrSettings())
    engine.load()
    return engine


@pytest.fixture(scope="module")
def raw() -> RapidOcr:
    """The same backend with word repair off: the lines as OCR text version 1 stored them."""
    engine = RapidOcr(OcrSettings(word_repair=False))
    engine.load()
    return engine


@pytest.mark.parametrize(
    ("font", "size", "scan"),
    # One case in the fast tier; the other fonts (a few seconds of OCR each) in the slow.
    [pytest.param(*c, marks=[pytest.mark.slow] if i else [],
                  id=f"{Path(c[0]).stem}-{c[1]}{'-scan' if c[2] else ''}")
     for i, c in enumerate(CASES)],
)
def test_glued_words_from_the_issue_come_back_with_their_spaces(
    repaired: RapidOcr, raw: RapidOcr, font: str, size: int, scan: bool
) -> None:
    image = render(font, size, scan)
    before = ocr_text(raw.read(image)).lower()
    after = ocr_text(repaired.read(image)).lower()
    # The recogniser alone glues words here (the regression this repairs) ...
    assert sum(p in before for p in PHRASES) <= 2, before
    # ... and the repaired text reads like the page, its protected tokens whole.
    assert [p for p in PHRASES if p not in after] == [], after
    assert [t for t in PROTECTED if t not in after] == [], after


def test_word_boxes_follow_the_words_left_to_right(repaired: RapidOcr) -> None:
    lines = repaired.read(render(*CASES[0]))
    assert len(lines) == len(LINES)
    for line in lines:
        assert [w for w, _ in line.words] == line.text.split()
        x0, y0, x1, y1 = line.box
        lefts = [b[0] for _, b in line.words]
        assert lefts == sorted(lefts)
        for _, (a0, b0, a1, b1) in line.words:
            assert x0 - 1e-6 <= a0 < a1 <= x1 + 1e-6 and (b0, b1) == (y0, y1)
    # "DNS" sits between "internal" and "saw", boxes apart.
    first = {w.lower(): b for w, b in lines[0].words}
    assert first["internal"][2] <= first["dns"][0] < first["dns"][2] <= first["saw"][0]


def test_stored_page_text_of_a_scan_is_the_repaired_text(repaired: RapidOcr) -> None:
    image = render(*CASES[1])
    doc = load_document("scans/tee.pdf", scanned_pdf([image], dpi=100), ingest=IngestSettings(),
                        ocr=repaired, render_pages=False)
    (page,) = doc.pages
    assert "read from standard input and write to standard output" in page.text
    assert all(line.words for line in page.boxes)
    png = load_document("shots/tee.png", encode(image, "PNG"), ingest=IngestSettings(),
                        ocr=repaired, render_pages=False)
    assert "do not overwrite" in png.pages[0].text
