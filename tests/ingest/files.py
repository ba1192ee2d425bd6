"""Builders of real test files (pictures, text and scanned PDFs), made on the fly.

Every file is produced by the same libraries a user's tools would use (Pillow,
reportlab, pypdf), so the loaders are tested on real encodings, not on mocks.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from rag.types import OcrBox

FONT_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def font(size: int = 36) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A TrueType font big enough for OCR (Pillow's bundled one if DejaVu is missing)."""
    if FONT_PATH.exists():
        return ImageFont.truetype(str(FONT_PATH), size)
    return ImageFont.load_default(size=size)


def text_image(
    lines: Sequence[str],
    *,
    size: int = 36,
    width: int = 1000,
    height: int | None = None,
    mode: str = "RGB",
    background: object = "white",
) -> Image.Image:
    """Black text lines on a plain background, spaced like a document."""
    height = height or int(size * 2 * len(lines) + size * 2)
    img = Image.new(mode, (width, height), background)  # type: ignore[arg-type]
    draw = ImageDraw.Draw(img)
    fill: object = (0, 0, 0, 255) if mode == "RGBA" else "black"
    for i, line in enumerate(lines):
        draw.text((size, size + i * size * 2), line, font=font(size), fill=fill)  # type: ignore[arg-type]
    return img


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def text_pdf(pages: Sequence[Sequence[str]], *, font_size: int = 14) -> bytes:
    """A digital PDF with a real text layer (reportlab), one list of lines per page."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4)
    for lines in pages:
        pdf.setFont("Helvetica", font_size)
        for i, line in enumerate(lines):
            pdf.drawString(72, 770 - i * font_size * 1.5, line)
        pdf.showPage()
    pdf.save()
    return buf.getvalue()


def mixed_pdf(text_lines: Sequence[str], scanned: Image.Image) -> bytes:
    """Page 1 has a text layer; page 2 is only a picture of text (a scan)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4)
    pdf.setFont("Helvetica", 14)
    for i, line in enumerate(text_lines):
        pdf.drawString(72, 770 - i * 21, line)
    pdf.showPage()
    width, height = A4
    pdf.drawImage(ImageReader(scanned), 0, height - width * scanned.height / scanned.width,
                  width=width, height=width * scanned.height / scanned.width)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def scan_like(image: Image.Image) -> Image.Image:
    """A scanner's look: a slight tilt, grey ink on grey paper, noise and blur."""
    import numpy as np
    from PIL import ImageFilter

    grey = image.convert("L").rotate(0.6, resample=Image.Resampling.BICUBIC, fillcolor=255)
    arr = 40 + np.asarray(grey).astype(np.float32) * (232 - 40) / 255
    arr += np.random.default_rng(3).normal(0, 2.5, size=arr.shape)
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="L")
    return out.filter(ImageFilter.GaussianBlur(0.45)).convert("RGB")


def scanned_pdf(images: Sequence[Image.Image], dpi: float = 100.0) -> bytes:
    """An image-only PDF, as a scanner writes it (Pillow's PDF writer)."""
    first, *rest = [im.convert("RGB") for im in images]
    return encode(first, "PDF", resolution=dpi, save_all=True, append_images=rest)


def empty_pdf() -> bytes:
    """A well-formed PDF with zero pages."""
    from pypdf import PdfWriter

    buf = io.BytesIO()
    PdfWriter().write(buf)
    return buf.getvalue()


def encrypted_pdf(source: bytes, *, user_password: str, owner_password: str = "owner") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(source)))
    writer.encrypt(user_password=user_password, owner_password=owner_password,
                   algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` but holds one tiny IDAT: a bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


class FakeOcr:
    """A test double for the OCR protocol: fixed lines, and a record of every call."""

    def __init__(self, boxes: Sequence[OcrBox] = ()) -> None:
        self.boxes = list(boxes)
        self.calls: list[tuple[int, int]] = []

    def read(self, image: Image.Image) -> list[OcrBox]:
        self.calls.append(image.size)
        return list(self.boxes)


class BrokenOcr:
    """An OCR backend whose library blows up."""

    def read(self, image: Image.Image) -> list[OcrBox]:
        raise RuntimeError("onnxruntime exploded")
