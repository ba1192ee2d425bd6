"""OCR: the pure layout helpers, the registry, and the real RapidOCR on rendered text.

The real-engine tests run RapidOCR a handful of times (a few seconds each on two cores),
sharing one engine per module, so they stay in the default run.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from ingest.chunking import chunk_document
from ingest.loaders import load_document
from rag.errors import ConfigError
from rag.ocr import (
    BACKENDS,
    OcrEngine,
    RapidOcr,
    SkipBlank,
    build_ocr,
    is_blank,
    ocr_layout,
    ocr_text,
)
from rag.ocr.base import quad_to_box, reading_order
from rag.settings import ChunkSettings, IngestSettings, OcrSettings
from rag.types import OcrBox
from tests.ingest.files import encode, font, scanned_pdf, text_image


def box(text: str, x0: float, y0: float, x1: float, y1: float) -> OcrBox:
    return OcrBox(text, (x0, y0, x1, y1), 0.9)


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


# -- pure helpers -------------------------------------------------------------------


def test_quad_to_box_normalises_and_clamps() -> None:
    quad = [[10, 20], [110, 18], [112, 40], [8, 42]]
    assert quad_to_box(quad, 200, 100) == (0.04, 0.18, 0.56, 0.42)
    assert quad_to_box([[-5, -5], [300, -5], [300, 150], [-5, 150]], 200, 100) == (
        0.0, 0.0, 1.0, 1.0
    )
    assert quad_to_box([], 10, 10) == (0.0, 0.0, 0.0, 0.0)


@given(
    st.lists(st.tuples(st.floats(-50, 500), st.floats(-50, 500)), min_size=4, max_size=4),
    st.integers(1, 400),
    st.integers(1, 400),
)
def test_quad_to_box_is_always_a_valid_normalised_box(
    quad: list[tuple[float, float]], width: int, height: int
) -> None:
    x0, y0, x1, y1 = quad_to_box(quad, width, height)
    assert 0.0 <= x0 <= x1 <= 1.0 and 0.0 <= y0 <= y1 <= 1.0


def test_reading_order_groups_rows_and_reads_left_to_right() -> None:
    # A slightly skewed row whose right half sits higher than the next row's start,
    # and lines of different heights in one row: detectors' corner sort gets this wrong.
    lines = [
        box("world", 0.50, 0.095, 0.80, 0.145),
        box("second row", 0.10, 0.20, 0.50, 0.25),
        box("hello", 0.10, 0.10, 0.40, 0.15),
        box("(big)", 0.85, 0.08, 0.95, 0.16),
        box("third", 0.10, 0.30, 0.30, 0.35),
    ]
    ordered = reading_order(lines)
    assert [b.text for b in ordered] == ["hello", "world", "(big)", "second row", "third"]
    assert ocr_text(ordered) == "hello world (big)\nsecond row\nthird"


def test_ocr_layout_spans_point_at_each_line() -> None:
    lines = [box("Total", 0.1, 0.1, 0.2, 0.15), box("$45.00", 0.7, 0.1, 0.8, 0.15),
             box("Thanks", 0.1, 0.3, 0.3, 0.35)]
    text, spans = ocr_layout(lines)
    assert text == "Total $45.00\nThanks"
    assert [text[s:e] for s, e in spans] == ["Total", "$45.00", "Thanks"]
    assert ocr_layout([]) == ("", [])


@given(st.lists(st.tuples(st.text(min_size=1, max_size=8), st.floats(0, 0.9),
                          st.floats(0, 0.9)), max_size=12))
def test_ocr_layout_spans_property(raw: list[tuple[str, float, float]]) -> None:
    lines = reading_order(box(t, x, y, x + 0.05, y + 0.05) for t, x, y in raw)
    text, spans = ocr_layout(lines)
    assert [text[s:e] for s, e in spans] == [b.text for b in lines]
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_registry_and_build_ocr() -> None:
    assert set(BACKENDS) == {"rapidocr", "rapidocr_torch"}
    assert build_ocr(OcrSettings(enabled=False)) is None
    engine = build_ocr(OcrSettings())
    assert isinstance(engine, SkipBlank) and isinstance(engine, OcrEngine)
    assert isinstance(engine.engine, RapidOcr)
    assert isinstance(build_ocr(OcrSettings(blank_range=-1)), RapidOcr)
    with pytest.raises(ConfigError, match="known: rapidocr, rapidocr_torch"):
        build_ocr(OcrSettings(backend="tesseract"))


# -- the real engine -----------------------------------------------------------------

SENTENCE = ["Quarterly revenue grew strongly", "Invoice number 4521 is overdue"]


@pytest.fixture(scope="module")
def engine() -> Iterator[RapidOcr]:
    ocr = RapidOcr(OcrSettings())
    ocr.load()
    yield ocr


def test_rapidocr_reads_a_rendered_sentence(engine: RapidOcr) -> None:
    image = text_image(SENTENCE, size=36, width=900)
    started = time.perf_counter()
    lines = engine.read(image)
    elapsed = time.perf_counter() - started
    assert [b.text for b in lines] == SENTENCE, f"OCR read {[b.text for b in lines]}"
    first, second = lines
    # Boxes are normalised, ordered top to bottom, and sit where the text was drawn
    # (36 px from the left and top of a 900 x 216 image).
    assert first.box[1] < second.box[1]
    assert first.box[0] == pytest.approx(36 / 900, abs=0.03)
    assert first.box[1] == pytest.approx(36 / 216, abs=0.06)
    assert all(0.5 <= b.confidence <= 1.0 for b in lines)
    print(f"OCR of a 900x216 picture: {elapsed:.2f}s")


def test_rapidocr_boxes_fit_the_original_after_downscaling(engine: RapidOcr) -> None:
    small = RapidOcr(OcrSettings(max_side=450))
    image = text_image(SENTENCE, size=36, width=900)
    big_boxes = engine.read(image)
    small_boxes = small.read(image)
    assert len(small_boxes) == len(big_boxes) == 2
    for a, b in zip(big_boxes, small_boxes, strict=True):
        # Same line, same place: centres agree (extents differ by the detector's margin).
        assert (a.box[0] + a.box[2]) / 2 == pytest.approx((b.box[0] + b.box[2]) / 2, abs=0.02)
        assert (a.box[1] + a.box[3]) / 2 == pytest.approx((b.box[1] + b.box[3]) / 2, abs=0.02)


def test_rapidocr_handles_degenerate_images(engine: RapidOcr) -> None:
    started = time.perf_counter()
    assert engine.read(Image.new("RGB", (1, 1), "white")) == []
    assert engine.read(Image.new("L", (64, 64), 255)) == []
    assert engine.read(Image.new("RGBA", (3000, 2), (0, 0, 0, 0))) == []
    assert engine.read(Image.new("RGB", (2, 3000), "black")) == []
    # Thin strips are padded, not blown up 30x by RapidOCR's minimum side (that took
    # minutes; the bound is loose so a busy 2-core CI machine does not flake).
    assert time.perf_counter() - started < 30


def test_rapidocr_reads_a_thin_strip_with_boxes_relative_to_it(engine: RapidOcr) -> None:
    strip = Image.new("RGB", (320, 26), "white")
    ImageDraw.Draw(strip).text((4, 2), "Thin banner text", font=font(20), fill="black")
    (line,) = engine.read(strip)
    assert words(line.text) == {"thin", "banner", "text"}
    assert 0 <= line.box[1] < line.box[3] <= 1 and line.box[3] > 0.5


def test_rapidocr_drops_lines_below_min_confidence() -> None:
    strict = RapidOcr(OcrSettings(min_confidence=1.01))
    assert strict.read(text_image(SENTENCE[:1], size=36, width=700)) == []


def test_rapidocr_is_safe_to_share_between_threads(engine: RapidOcr) -> None:
    image = text_image(["Thread safety check"], size=36, width=700)
    results: list[list[str]] = []

    def work() -> None:
        results.append([b.text for b in engine.read(image)])

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [["Thread safety check"]] * 2


def test_picture_and_scanned_pdf_end_to_end(engine: RapidOcr) -> None:
    """A screenshot and a scan go through load -> OCR -> chunks with boxes."""
    settings = IngestSettings()
    picture = load_document("shots/invoice.png", encode(text_image(SENTENCE), "PNG"),
                            ingest=settings, ocr=engine, render_pages=False)
    (page,) = picture.pages
    assert page.ocr and {"quarterly", "revenue", "invoice", "4521"} <= words(page.text)

    started = time.perf_counter()
    scan = load_document("scans/letter.pdf", scanned_pdf([text_image(SENTENCE)], dpi=150),
                         ingest=settings, ocr=engine, render_pages=False)
    elapsed = time.perf_counter() - started
    (page,) = scan.pages
    assert page.kind == "page" and page.ocr and page.image is not None
    assert {"invoice", "number", "overdue"} <= words(page.text)
    assert len(page.boxes) == 2 and all(0 <= v <= 1 for b in page.boxes for v in b.box)

    chunks = chunk_document(scan, doc_id="cd" * 32, source="scans/letter.pdf",
                            chunking=ChunkSettings(size=40, overlap=0), visual_points=True,
                            metadata={}, tenant=None)
    texts = [c for c in chunks if c.modality == "text"]
    assert len(texts) == 2 and all(len(c.boxes) == 1 for c in texts)
    assert [c.modality for c in chunks][-1] == "page"
    print(f"scanned page render + OCR: {elapsed:.2f}s")


def test_blank_images_skip_the_engine_and_text_does_not() -> None:
    class Counting:
        calls = 0

        def read(self, image: Image.Image) -> list[OcrBox]:
            Counting.calls += 1
            return []

    engine = SkipBlank(Counting(), max_range=24)
    white = Image.new("RGB", (2480, 3508), "white")
    noisy_blank = Image.effect_noise((600, 800), 2).convert("RGB")  # scanner noise
    assert is_blank(white, 24) and is_blank(noisy_blank, 24)
    assert engine.read(white) == [] and engine.read(noisy_blank) == []
    assert Counting.calls == 0
    page = Image.new("RGB", (600, 800), "white")
    ImageDraw.Draw(page).text((40, 40), "Invoice 4521", fill="black")
    assert not is_blank(page, 24)
    engine.read(page)
    assert Counting.calls == 1


# -- the torch backend and single-threaded engines ------------------------------------


def test_torch_backend_reads_exactly_what_onnxruntime_reads(engine: RapidOcr) -> None:
    """Same PP-OCRv4 weights, same pre/post-processing: same lines, boxes, confidences."""
    from rag.ocr import RapidOcrTorch

    torch_engine = build_ocr(OcrSettings(backend="rapidocr_torch", device="cpu", blank_range=-1))
    assert isinstance(torch_engine, RapidOcrTorch)
    images = [
        text_image(SENTENCE, size=36, width=900),
        text_image(["Total due: $1,245.00", "Ref. INV-2024/117 (paid 3 Dec)"], size=22,
                   width=640),
    ]
    for image in images:
        want, got = engine.read(image), torch_engine.read(image)
        assert [b.text for b in got] == [b.text for b in want] and want
        for a, b in zip(want, got, strict=True):
            assert a.box == pytest.approx(b.box, abs=2e-3)
            assert a.confidence == pytest.approx(b.confidence, abs=1e-3)
    assert torch_engine.device == "cpu"


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_threads_option_makes_single_threaded_sessions(runtime: str) -> None:
    single = RapidOcr(OcrSettings(threads=1, runtime=runtime))  # type: ignore[arg-type]
    single.load()
    engine = single._engine
    assert engine is not None and single.runtime == runtime
    for session in (engine.text_det.infer, engine.text_rec.session):
        if runtime == "openvino":
            # Unpinned: pinned single-threaded workers all landed on core 0.
            assert session.threads == 1 and not session.pinned
        else:
            opts = session.session.get_session_options()
            assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    assert [b.text for b in single.read(text_image(SENTENCE[:1], size=36, width=700))] == (
        SENTENCE[:1]
    )


def test_target_size_enlarges_small_stretches_and_fits() -> None:
    from rag.ocr.rapidocr import target_size

    assert target_size(800, 200, 2000) == (800, 200)
    assert target_size(400, 100, 2000, enlarge_below=1600) == (800, 200)  # at most 2x
    assert target_size(1200, 300, 2000, enlarge_below=1600) == (1600, 400)
    assert target_size(1800, 300, 2000, enlarge_below=1600) == (1800, 300)
    assert target_size(800, 200, 2000, stretch_x=1.5) == (1200, 200)
    # Fitting max_side keeps the stretched aspect ratio.
    assert target_size(1600, 800, 2000, stretch_x=1.5) == (2000, 667)


@given(st.integers(1, 5000), st.integers(1, 5000), st.integers(0, 3000),
       st.floats(1.0, 3.0))
def test_target_size_never_exceeds_max_side(w: int, h: int, enlarge: int,
                                            stretch: float) -> None:
    from rag.ocr.rapidocr import target_size

    tw, th = target_size(w, h, 2000, enlarge, stretch)
    assert min(tw, th) >= 1 and max(tw, th) <= 2000


@pytest.mark.parametrize(
    ("raw", "fixed"),
    [
        ("about 9,o00 to 61,0o0 queries", "about 9,000 to 61,000 queries"),
        ("from 3o0 seconds (thread: 1o24)", "from 300 seconds (thread: 1024)"),
        ("O.5 s and 1O%", "0.5 s and 10%"),
        ("go on, look at OO and v2o and o2b", "go on, look at OO and v2o and o2b"),
        ("port 8o, ends.", "port 80, ends."),
    ],
)
def test_fix_digits_reads_o_as_zero_only_inside_numbers(raw: str, fixed: str) -> None:
    from rag.ocr.rapidocr import fix_digits

    assert fix_digits(raw) == fixed


def test_stretched_scan_keeps_numbers_and_spaces(engine: RapidOcr) -> None:
    """The example corpus's failure: "9,000 to 61,000" read as "9,00to61,00"."""
    img = Image.new("RGB", (1100, 70), "white")
    ImageDraw.Draw(img).text((12, 16), "the load rose from about 9,000 to 61,000 queries per",
                             fill=(30, 30, 30), font=font(30))
    text = ocr_text(engine.read(img))
    assert "9,000 to 61,000" in text, text
