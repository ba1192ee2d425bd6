"""PDFs: the text layer from pypdf, pages rendered with pdfium, OCR where text is missing.

Digital PDFs carry their text and need no OCR; scanned ones carry (almost) none, so a
page with fewer than ``ingest.min_text_chars`` visible characters is rendered and OCR'd.
Text-layer pages get boxes too: pdfium's text rectangles (one per run of characters on a
line), normalised to 0..1 of the page like OCR boxes and with confidence 1.0, so a
citation of a digital PDF can point at its lines just as one of a scan does.
pdfium is also the fallback parser: it opens damaged files pypdf gives up on and
decrypts AES without extra packages.
"""

from __future__ import annotations

import contextlib
import io
import math
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pypdf
import pypdfium2 as pdfium
from PIL import Image

from ingest.loaders.base import DocumentReader, LoadedPage, LoadRequest, read_ocr, visible_chars
from rag.errors import FileRejected, LimitExceeded
from rag.ocr.base import ocr_text
from rag.types import OcrBox

if TYPE_CHECKING:
    from pypdfium2 import PdfDocument

# PDFium is not thread-safe, not even across different documents: every call into it
# from this process goes through this lock.
_PDFIUM_LOCK = threading.RLock()
_FPDF_ERR_PASSWORD = 4


class _NeedsPassword(Exception):
    pass


def render_scale(width_pt: float, height_pt: float, dpi: int, max_pixels: int) -> float:
    """pdfium's scale for ``dpi``, reduced so the bitmap stays within ``max_pixels``.

    A page can declare any size (posters, or a hostile 200 x 200 inch MediaBox); the
    pixel limit that protects picture decoding protects rendering the same way.
    """
    scale = max(1, dpi) / 72.0
    area = width_pt * height_pt
    if area <= 0:
        return scale

    def pixels(s: float) -> int:  # pdfium rounds the bitmap size up
        return math.ceil(width_pt * s) * math.ceil(height_pt * s)

    if pixels(scale) > max_pixels:
        scale = math.sqrt(max_pixels / area)
        while scale > 1e-6 and pixels(scale) > max_pixels:
            scale *= 0.99
    return scale


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


# A page with more text rectangles than this (a dense table of single glyphs) keeps
# its text but gets no boxes: thousands of boxes per chunk would bloat every payload.
MAX_LAYER_BOXES = 2000


def layer_boxes(textpage: Any, cropbox: tuple[float, float, float, float]) -> list[OcrBox]:
    """One box per pdfium text rectangle: its text and its bounds normalised to 0..1 of
    the crop box, top-left origin (PDF space is bottom-left). Empty rectangles and
    whitespace-only runs are skipped."""
    left, bottom, right, top = (float(v) for v in cropbox)
    width, height = right - left, top - bottom
    if width <= 0 or height <= 0:
        return []
    count = textpage.count_rects()
    if count > MAX_LAYER_BOXES:
        return []

    def clamp(v: float) -> float:
        return min(1.0, max(0.0, v))

    boxes: list[OcrBox] = []
    for i in range(count):
        x0, y0, x1, y1 = (float(v) for v in textpage.get_rect(i))
        text = " ".join(_clean(textpage.get_text_bounded(x0, y0, x1, y1) or "").split())
        if not text:
            continue
        box = (
            clamp((x0 - left) / width),
            clamp((top - y1) / height),
            clamp((x1 - left) / width),
            clamp((top - y0) / height),
        )
        if box[2] > box[0] and box[3] > box[1]:
            boxes.append(OcrBox(text, box, 1.0))
    return boxes


class PdfReader(DocumentReader):
    """Opens with pypdf (or pdfium), checks pages and password up front, renders lazily."""

    def __init__(self, request: LoadRequest) -> None:
        super().__init__(request)
        self._pypdf: pypdf.PdfReader | None = None
        self._pdfium: PdfDocument | None = None
        self._count = self._open()
        if self._count <= 0:
            self.close()
            raise FileRejected(f"{self.name}: the PDF has no pages")
        limit = request.ingest.max_pages
        if self._count > limit:
            self.close()
            raise LimitExceeded(
                f"{self.name}: the PDF has {self._count} pages; the limit is {limit} "
                "(ingest.max_pages)"
            )

    @property
    def page_count(self) -> int:
        return self._count

    def _password_error(self) -> FileRejected:
        return FileRejected(
            f"{self.name}: the PDF is encrypted and needs a password to open; "
            "remove the password (e.g. print to PDF) and ingest it again"
        )

    def _open(self) -> int:
        try:
            reader = pypdf.PdfReader(io.BytesIO(self.request.data), strict=False)
            if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
                raise _NeedsPassword
            count = len(reader.pages)
        except _NeedsPassword:
            raise self._password_error() from None
        except Exception as exc:  # damaged file, or AES without `cryptography`
            pypdf_error = exc
        else:
            self._pypdf = reader
            return count
        corrupt = FileRejected(
            f"{self.name}: not a readable PDF; corrupt or truncated ({pypdf_error})"
        )
        try:
            with _PDFIUM_LOCK:
                self._pdfium = pdfium.PdfDocument(self.request.data)
                return len(self._pdfium)
        except pdfium.PdfiumError as exc:
            if getattr(exc, "err_code", None) == _FPDF_ERR_PASSWORD:
                raise self._password_error() from exc
            raise corrupt from pypdf_error
        except Exception:
            raise corrupt from pypdf_error

    def _open_pdfium(self) -> PdfDocument:
        with _PDFIUM_LOCK:
            if self._pdfium is None:
                try:
                    self._pdfium = pdfium.PdfDocument(self.request.data)
                except pdfium.PdfiumError as exc:
                    if getattr(exc, "err_code", None) == _FPDF_ERR_PASSWORD:
                        raise self._password_error() from exc
                    raise FileRejected(f"{self.name}: the PDF cannot be opened ({exc})") from exc
            return self._pdfium

    def close(self) -> None:
        with _PDFIUM_LOCK:
            if self._pdfium is not None:
                with contextlib.suppress(Exception):
                    self._pdfium.close()
                self._pdfium = None
        self._pypdf = None

    def _pages(self) -> Iterator[LoadedPage]:
        request = self.request
        try:
            for index in range(self._count):
                number = index + 1
                text = self._layer_text(index)
                wants_ocr = visible_chars(text) < request.ingest.min_text_chars
                ocr_possible = wants_ocr and request.ocr is not None
                image: Image.Image | None = None
                boxes: list[OcrBox] = []
                from_ocr = False
                if request.render_pages or ocr_possible:
                    image = self._render(index, number)
                if ocr_possible and image is not None:
                    found = read_ocr(request, image, number)
                    found_text = ocr_text(found)
                    if found and visible_chars(found_text) >= visible_chars(text):
                        text, boxes, from_ocr = found_text, found, True
                if not from_ocr and visible_chars(text) > 0:
                    boxes = self._layer_boxes(index)
                yield LoadedPage(
                    page=number, kind="page", text=text, boxes=boxes, image=image, ocr=from_ocr
                )
        finally:
            self.close()

    def _layer_text(self, index: int) -> str:
        """The page's text layer; a page pypdf cannot parse falls back to pdfium, then ""."""
        if self._pypdf is not None:
            try:
                return _clean(self._pypdf.pages[index].extract_text() or "")
            except Exception:
                pass
        try:
            with self._textpage(index) as (_page, textpage):
                return _clean(textpage.get_text_bounded() or "")
        except Exception:
            return ""

    def _layer_boxes(self, index: int) -> list[OcrBox]:
        """Text-layer lines with their boxes from pdfium; [] when pdfium cannot tell."""
        try:
            with self._textpage(index) as (page, textpage):
                return layer_boxes(textpage, page.get_cropbox())
        except Exception:
            return []

    @contextlib.contextmanager
    def _textpage(self, index: int) -> Iterator[tuple[Any, Any]]:
        """A pdfium page and its text page, held under the pdfium lock, closed after."""
        doc = self._open_pdfium()
        with _PDFIUM_LOCK:
            page = doc[index]
            try:
                textpage = page.get_textpage()
                try:
                    yield page, textpage
                finally:
                    textpage.close()
            finally:
                page.close()

    def _render(self, index: int, number: int) -> Image.Image:
        settings = self.request.ingest
        doc = self._open_pdfium()
        with _PDFIUM_LOCK:
            try:
                if index >= len(doc):
                    raise FileRejected(
                        f"{self.name}: page {number} cannot be rendered (damaged page tree)"
                    )
                page = doc[index]
                try:
                    width, height = page.get_size()
                    if not (math.isfinite(width) and math.isfinite(height)) or (
                        width <= 0 or height <= 0
                    ):
                        raise FileRejected(
                            f"{self.name}: page {number} has no usable size ({width}x{height} pt)"
                        )
                    scale = render_scale(width, height, settings.render_dpi, settings.max_pixels)
                    bitmap = page.render(scale=scale)
                    try:
                        # to_pil() may share pdfium's buffer: copy before the bitmap closes.
                        return bitmap.to_pil().convert("RGB").copy()
                    finally:
                        bitmap.close()
                finally:
                    page.close()
            except FileRejected:
                raise
            except Exception as exc:
                raise FileRejected(
                    f"{self.name}: page {number} cannot be rendered ({exc})"
                ) from exc
