"""Picture files: decoded defensively with Pillow, then OCR'd."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageOps

from ingest.loaders.base import DocumentReader, LoadedPage, LoadRequest, read_ocr
from ingest.loaders.sniff import IMAGE_MIMES
from rag.errors import FileRejected, LimitExceeded
from rag.ocr.base import ocr_text

_HIGH_BIT_DEPTH = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0}


def decode_image(name: str, data: bytes, mime: str, max_pixels: int) -> Image.Image:
    """The first frame of an image file as upright RGB.

    The pixel limit is checked on the header's size, before any pixel data is decoded,
    so a tiny file that claims to be 100 000 x 100 000 (a decompression bomb) costs
    nothing. Pillow's own bomb guard fires at twice ``Image.MAX_IMAGE_PIXELS``; that is
    also reported as :class:`LimitExceeded`, so limits above about 179 Mpx need that
    global raised as well.
    """
    fmt = IMAGE_MIMES[mime]
    try:
        img: Image.Image = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise LimitExceeded(f"{name}: the image is too large to decode safely ({exc})") from exc
    except Exception as exc:
        raise FileRejected(
            f"{name}: not a readable {fmt} image; corrupt or truncated ({exc})"
        ) from exc
    try:
        width, height = img.size
        if width <= 0 or height <= 0:
            raise FileRejected(f"{name}: the image has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise LimitExceeded(
                f"{name}: the image is {width}x{height} = {width * height:,} pixels; "
                f"the limit is {max_pixels:,} (ingest.max_pixels)"
            )
        img.load()  # first frame only: GIF/TIFF/WebP open at frame 0
        img = _upright(img)
        return to_rgb(img)
    except (FileRejected, LimitExceeded):
        raise
    except Image.DecompressionBombError as exc:
        raise LimitExceeded(f"{name}: the image is too large to decode safely ({exc})") from exc
    except Exception as exc:  # truncated data, broken chunks, odd modes, MemoryError
        raise FileRejected(f"{name}: the {fmt} image data is corrupt or truncated ({exc})") from exc


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation, as every photo viewer does; broken EXIF is ignored."""
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:
        return img


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB, with transparency flattened onto white.

    A plain ``convert("RGB")`` turns transparent pixels black, which hides black text
    on transparent screenshots from OCR and from CLIP; 16-bit images are rescaled instead
    of clipped to white.
    """
    if img.mode == "RGB":
        return img
    if img.mode in _HIGH_BIT_DEPTH or img.mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        brightest = float(np.nanmax(arr)) if arr.size else 255.0
        top = _HIGH_BIT_DEPTH.get(img.mode) or max(255.0, brightest)
        arr = np.nan_to_num(arr) * (255.0 / top)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))  # 2-D uint8: mode L
    has_alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


class ImageReader(DocumentReader):
    """A picture is one page of kind ``image``: decoded when opened, OCR'd when read."""

    def __init__(self, request: LoadRequest) -> None:
        super().__init__(request)
        self._image = decode_image(
            request.name, request.data, request.mime, request.ingest.max_pixels
        )

    @property
    def page_count(self) -> int:
        return 1

    def _pages(self) -> Iterator[LoadedPage]:
        boxes = read_ocr(self.request, self._image, 1)
        yield LoadedPage(
            page=1,
            kind="image",
            text=ocr_text(boxes),
            boxes=boxes,
            image=self._image,
            ocr=self.request.ocr is not None,
        )
