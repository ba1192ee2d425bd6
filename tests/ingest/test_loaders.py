"""Loaders on real files built on the fly: every format, every hostile file, every limit.

OCR is a test double here (``FakeOcr``) so this file stays fast; the real RapidOCR runs
in ``test_ocr.py``.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from ingest.loaders import load_document, open_document, sniff
from ingest.loaders.pdf import render_scale
from rag.errors import BadInput, FileRejected, LimitExceeded, UnsupportedFile
from rag.ocr import ocr_text
from rag.settings import IngestSettings
from rag.types import OcrBox
from tests.ingest.files import (
    BrokenOcr,
    FakeOcr,
    empty_pdf,
    encode,
    encrypted_pdf,
    mixed_pdf,
    png_header_only,
    scanned_pdf,
    text_image,
    text_pdf,
)

SETTINGS = IngestSettings()
LINES = [OcrBox("Quarterly revenue", (0.1, 0.1, 0.5, 0.15), 0.98),
         OcrBox("grew strongly", (0.1, 0.2, 0.4, 0.25), 0.95)]
TEXT_PAGES = [
    ["This digital PDF has a real text layer.", "It needs no OCR at all."],
    ["The second page talks about invoices and payment terms."],
]


def load(name: str, data: bytes, *, ocr: object = None, render_pages: bool = False,
         ingest: IngestSettings = SETTINGS):
    return load_document(name, data, ingest=ingest, ocr=ocr, render_pages=render_pages)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fmt", "mime", "name"),
    [
        ("PNG", "image/png", "shot.png"),
        ("JPEG", "image/jpeg", "photo.jpg"),
        ("WEBP", "image/webp", "pic.webp"),
        ("GIF", "image/gif", "anim.gif"),
        ("TIFF", "image/tiff", "scan.tiff"),
        ("BMP", "image/bmp", "old.bmp"),
    ],
)
def test_pictures_load_as_one_ocrd_image_page(fmt: str, mime: str, name: str) -> None:
    ocr = FakeOcr(LINES)
    doc = load(f"some/dir/{name}", encode(text_image(["hello"]), fmt), ocr=ocr)
    assert (doc.mime, doc.title, doc.name) == (mime, name, f"some/dir/{name}")
    (page,) = doc.pages
    assert (page.page, page.kind, page.ocr) == (1, "image", True)
    assert page.image is not None and page.image.mode == "RGB"
    assert page.image.size == (1000, 144)
    assert page.boxes == LINES and page.text == ocr_text(LINES)
    assert ocr.calls == [(1000, 144)]


def test_type_comes_from_magic_bytes_not_the_extension() -> None:
    png = encode(text_image(["x"]), "PNG")
    assert load("misnamed.jpg", png).mime == "image/png"
    assert load("no_extension", png).mime == "image/png"
    assert load("report.txt", text_pdf(TEXT_PAGES)).mime == "application/pdf"


def test_picture_without_ocr_has_no_text() -> None:
    (page,) = load("a.png", encode(text_image(["x"]), "PNG")).pages
    assert (page.text, page.boxes, page.ocr) == ("", [], False)


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (300, 100), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    (page,) = load("phone.jpg", encode(img, "JPEG", exif=exif)).pages
    assert page.image is not None and page.image.size == (100, 300)


def test_transparent_background_becomes_white_not_black() -> None:
    img = text_image(["ink"], mode="RGBA", background=(0, 0, 0, 0))
    (page,) = load("logo.png", encode(img, "PNG")).pages
    assert page.image is not None
    assert page.image.getpixel((1, 1)) == (255, 255, 255)
    assert min(page.image.convert("L").getdata()) < 50  # the text is still there


def test_sixteen_bit_grey_is_rescaled_not_clipped() -> None:
    img = Image.fromarray(np.full((8, 8), 32896, dtype=np.uint16))
    (page,) = load("depth.png", encode(img, "PNG")).pages
    assert page.image is not None
    assert page.image.getpixel((0, 0)) == (128, 128, 128)


def test_gif_and_tiff_use_the_first_frame() -> None:
    red, blue = Image.new("RGB", (20, 20), "red"), Image.new("RGB", (20, 20), "blue")
    for fmt in ("GIF", "TIFF"):
        data = encode(red, fmt, save_all=True, append_images=[blue])
        (page,) = load(f"frames.{fmt.lower()}", data).pages
        assert page.image is not None
        r, g, b = page.image.getpixel((10, 10))
        assert r > 200 and b < 60


def test_one_pixel_image_loads_and_ocrs_to_nothing() -> None:
    (page,) = load("dot.png", encode(Image.new("RGB", (1, 1)), "PNG"), ocr=FakeOcr()).pages
    assert page.image is not None and page.image.size == (1, 1) and page.text == ""


@pytest.mark.parametrize(
    ("name", "data", "mime", "text"),
    [
        ("notes.txt", "héllo wörld\r\nline two".encode(), "text/plain", "héllo wörld\nline two"),
        ("bom.md", b"\xef\xbb\xbf# Title\n", "text/markdown", "# Title\n"),
        ("legacy.txt", b"caf\xe9 \x93quoted\x94", "text/plain", "café “quoted”"),
        ("wide.txt", b"\xff\xfe" + "utf sixteen".encode("utf-16-le"), "text/plain",
         "utf sixteen"),
        ("page.markdown", b"## Heading", "text/markdown", "## Heading"),
        ("data.csv", b"a,b\n1,2\n", "text/csv", "a,b\n1,2\n"),
        ("BMW.txt", b"BMW cars are fast and reliable, says this text file.", "text/plain",
         "BMW cars are fast and reliable, says this text file."),
    ],
)
def test_text_files(name: str, data: bytes, mime: str, text: str) -> None:
    doc = load(name, data)
    assert doc.mime == mime and doc.title == name
    (page,) = doc.pages
    assert (page.page, page.kind, page.text, page.image, page.boxes, page.ocr) == (
        1, "text", text, None, [], False
    )


def test_text_pdf_uses_its_text_layer_without_ocr() -> None:
    ocr = FakeOcr(LINES)
    doc = load("reports/q3.pdf", text_pdf(TEXT_PAGES), ocr=ocr)
    assert (doc.mime, doc.title) == ("application/pdf", "q3.pdf")
    assert [p.page for p in doc.pages] == [1, 2]
    assert all(p.kind == "page" and not p.ocr and p.boxes == [] for p in doc.pages)
    assert "real text layer" in doc.pages[0].text
    assert "invoices" in doc.pages[1].text
    assert all(p.image is None for p in doc.pages)  # nothing rendered
    assert ocr.calls == []


def test_render_pages_renders_every_page_at_the_configured_dpi() -> None:
    ocr = FakeOcr(LINES)
    doc = load("q3.pdf", text_pdf(TEXT_PAGES), ocr=ocr, render_pages=True)
    for page in doc.pages:
        assert page.image is not None and page.image.mode == "RGB"
        # A4 is 595 x 842 pt; 144 dpi is a scale of 2.
        assert abs(page.image.size[0] - 1191) <= 2 and abs(page.image.size[1] - 1684) <= 2
        assert not page.ocr
    assert ocr.calls == []


def test_scanned_page_is_rendered_and_ocrd() -> None:
    ocr = FakeOcr(LINES)
    doc = load("scan.pdf", scanned_pdf([text_image(["hello"]), text_image(["again"])]), ocr=ocr)
    assert len(doc.pages) == 2 and len(ocr.calls) == 2
    for page in doc.pages:
        assert page.ocr and page.boxes == LINES and page.text == ocr_text(LINES)
        assert page.image is not None  # kept: the boxes refer to it


def test_scanned_page_without_ocr_is_not_rendered() -> None:
    doc = load("scan.pdf", scanned_pdf([text_image(["hello"])]), ocr=None)
    (page,) = doc.pages
    assert (page.text, page.image, page.ocr) == ("", None, False)


def test_mixed_pdf_ocrs_only_the_page_without_text() -> None:
    ocr = FakeOcr(LINES)
    data = mixed_pdf(["A page with a genuine text layer on it."], text_image(["scanned"]))
    first, second = load("mixed.pdf", data, ocr=ocr).pages
    assert not first.ocr and "genuine text layer" in first.text and first.image is None
    assert second.ocr and second.boxes == LINES and second.image is not None
    assert len(ocr.calls) == 1


def test_pdf_without_password_protection_for_opening_loads() -> None:
    data = encrypted_pdf(text_pdf(TEXT_PAGES), user_password="")
    assert "real text layer" in load("protected.pdf", data).pages[0].text


def test_rendered_pages_respect_the_pixel_limit() -> None:
    settings = IngestSettings(max_pixels=100_000, render_dpi=300)
    doc = load("q3.pdf", text_pdf(TEXT_PAGES), render_pages=True, ingest=settings)
    for page in doc.pages:
        assert page.image is not None
        width, height = page.image.size
        assert width * height <= 100_000 and width > 100


def test_open_document_streams_pages() -> None:
    reader = open_document("q3.pdf", text_pdf(TEXT_PAGES), ingest=SETTINGS, ocr=None,
                           render_pages=False)
    assert reader.page_count == 2 and reader.mime == "application/pdf"
    pages = reader.iter_pages()
    assert next(pages).page == 1
    assert next(pages).page == 2
    with pytest.raises(StopIteration):
        next(pages)


HOSTILE: list[tuple[str, bytes, type[BadInput], str]] = [
    ("zero.pdf", b"", FileRejected, "empty"),
    ("zero.txt", b"", FileRejected, "empty"),
    ("random.pdf", os.urandom(4096).replace(b"%PDF-", b""), FileRejected, "not PDF"),
    ("header-only.pdf", b"%PDF-1.7\n" + os.urandom(2048), FileRejected, "corrupt"),
    ("no-pages.pdf", empty_pdf(), FileRejected, "no pages"),
    ("locked.pdf", encrypted_pdf(text_pdf(TEXT_PAGES), user_password="s3cret"), FileRejected,
     "password"),
    ("archive.zip", b"PK\x03\x04" + os.urandom(64), UnsupportedFile, "supported types"),
    ("random.bin", os.urandom(512), UnsupportedFile, "PDF, PNG, JPEG"),
    ("binary.txt", os.urandom(2048) + b"\x00", FileRejected, "binary"),
    ("controls.txt", bytes(range(1, 32)) * 50, FileRejected, "binary"),
    ("utf16-broken.txt", b"\xff\xfe\x00\xd8", FileRejected, "utf-16"),
    ("bomb.png", png_header_only(100_000, 100_000), LimitExceeded, "too large"),
    ("big.png", png_header_only(9_000, 9_000), LimitExceeded, "81,000,000 pixels"),
    ("garbage.png", b"\x89PNG\r\n\x1a\n" + os.urandom(200), FileRejected, "PNG"),
    ("random.jpg", b"\xff\xd8\xff" + os.urandom(300), FileRejected, "JPEG"),
]


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


HOSTILE += [
    ("truncated.png", _truncated(encode(text_image(["x"]), "PNG")), FileRejected, "truncated"),
    ("truncated.jpg", _truncated(encode(text_image(["x"]), "JPEG")), FileRejected, "truncated"),
    ("truncated.pdf", _truncated(text_pdf(TEXT_PAGES)), FileRejected, "corrupt"),
    ("truncated.gif", _truncated(encode(text_image(["x"]), "GIF")), FileRejected, "GIF"),
    ("truncated.webp", _truncated(encode(text_image(["x"]), "WEBP")), FileRejected, "WEBP"),
]


@pytest.mark.parametrize(("name", "data", "error", "says"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_files_raise_typed_errors_naming_the_file(
    name: str, data: bytes, error: type[BadInput], says: str
) -> None:
    with pytest.raises(error) as info:
        load(f"uploads/{name}", data, ocr=FakeOcr(LINES), render_pages=True)
    message = str(info.value)
    assert message.startswith(f"uploads/{name}: ")
    assert says.lower() in message.lower()


def test_file_size_limit() -> None:
    with pytest.raises(LimitExceeded, match=r"^big\.txt: .*max_file_bytes"):
        load("big.txt", b"x" * 101, ingest=IngestSettings(max_file_bytes=100))


def test_pixel_limit_is_checked_before_decoding() -> None:
    data = encode(Image.new("RGB", (200, 200)), "PNG")
    with pytest.raises(LimitExceeded, match=r"^p\.png: .*40,000 pixels"):
        load("p.png", data, ingest=IngestSettings(max_pixels=39_999))


def test_page_limit() -> None:
    data = text_pdf([["one page of words here"]] * 3)
    with pytest.raises(LimitExceeded, match=r"^long\.pdf: the PDF has 3 pages; the limit is 2"):
        load("long.pdf", data, ingest=IngestSettings(max_pages=2))


def test_ocr_failure_is_a_file_error_naming_file_and_page() -> None:
    with pytest.raises(FileRejected, match=r"^scan\.pdf: page 1: OCR failed: onnxruntime"):
        load("scan.pdf", scanned_pdf([text_image(["x"])]), ocr=BrokenOcr())


def test_sniff_needs_no_parsing() -> None:
    assert sniff("x", b"%PDF-1.4\n") == "application/pdf"
    assert sniff("x", b"junk before header %PDF-1.4") == "application/pdf"
    assert sniff("a.md", b"# hi") == "text/markdown"
    assert sniff("notes.md", b"PDFs start with %PDF-1.7") == "text/markdown"
    assert sniff("notes.md", b"%PDF-1.7 ...") == "application/pdf"
    with pytest.raises(UnsupportedFile):
        sniff("a.docx", b"PK\x03\x04")


@given(
    st.floats(1, 20_000), st.floats(1, 20_000), st.integers(1, 600),
    st.integers(10_000, 100_000_000),
)
def test_render_scale_never_exceeds_the_pixel_limit(
    width: float, height: float, dpi: int, max_pixels: int
) -> None:
    scale = render_scale(width, height, dpi, max_pixels)
    assert 0 < scale <= dpi / 72
    assert math.ceil(width * scale) * math.ceil(height * scale) <= max_pixels or scale < 1e-5
