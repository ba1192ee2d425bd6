"""Images for the model: pick the visual sources, load them from the media store, shrink
them to the configured limits, and encode them as data URLs.

Why shrink here and not trust the server: every extra megapixel costs hundreds of
vision tokens and seconds of prefill, and some servers reject large bodies outright.
JPEG is used because every OpenAI-compatible server decodes it (llama.cpp's image
loader, for one, does not read the WebP our media store keeps).
"""

from __future__ import annotations

import base64
import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from rag.errors import NotFound
from rag.generate.prompt import Source
from rag.media import MediaStore

log = logging.getLogger(__name__)

JPEG_QUALITY = 85


@dataclass(frozen=True)
class AttachedImage:
    """An image ready to show the model, numbered like the source it belongs to."""

    index: int
    image: Image.Image
    data_url: str

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def fit_size(width: int, height: int, max_side: int, max_pixels: int) -> tuple[int, int]:
    """The largest size with the same aspect ratio that fits both limits; never upscales.

    Both sides stay at least 1 pixel, so extreme aspect ratios still produce an image.
    """
    width, height = max(1, int(width)), max(1, int(height))
    scale = 1.0
    if max_side > 0:
        scale = min(scale, max_side / max(width, height))
    if max_pixels > 0:
        scale = min(scale, math.sqrt(max_pixels / (width * height)))
    if scale >= 1.0:
        return width, height
    new_w = max(1, math.floor(width * scale))
    new_h = max(1, math.floor(height * scale))
    # Floating point can leave us a pixel over; trim the longer side until it fits.
    while max_pixels > 0 and new_w * new_h > max_pixels and max(new_w, new_h) > 1:
        if new_w >= new_h:
            new_w -= 1
        else:
            new_h -= 1
    return new_w, new_h


def resize_for_model(image: Image.Image, max_side: int, max_pixels: int) -> Image.Image:
    """An RGB copy of ``image`` within the limits (alpha flattened onto white)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        rgb = background
    else:
        rgb = image.convert("RGB")
    size = fit_size(rgb.width, rgb.height, max_side, max_pixels)
    if size != rgb.size:
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    return rgb


def to_data_url(image: Image.Image, quality: int = JPEG_QUALITY) -> str:
    """``data:image/jpeg;base64,...`` of an RGB image."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def choose_visual_sources(sources: Sequence[Source], max_images: int) -> list[Source]:
    """The visual sources to attach: best-scored first, at most ``max_images``, one per
    stored image (several text chunks of one page share it; the best-scored one carries
    it). Pictures and page points go before text chunks of a page, which only add the
    page's look to text the model already has.

    Returned in source order, so images appear in the prompt as [2], [5], ... even when
    [5] scored higher. Ties keep the retrieval order.
    """
    visual = [s for s in sources if s.is_visual]
    ranked = sorted(
        visual,
        key=lambda s: (s.hit.modality not in ("image", "page", "frame"), -s.hit.score, s.index),
    )
    best: list[Source] = []
    keys: set[str | None] = set()
    for source in ranked:
        if len(best) >= max(0, max_images):
            break
        if source.hit.media in keys:
            continue
        keys.add(source.hit.media)
        best.append(source)
    return sorted(best, key=lambda s: s.index)


def load_images(
    sources: Sequence[Source],
    media: MediaStore,
    max_images: int,
    max_side: int,
    max_pixels: int,
) -> list[AttachedImage]:
    """Load, shrink and encode the images of the chosen visual sources.

    A missing or unreadable media file is logged and skipped rather than failing the
    answer: the source's text still reaches the model, and the prompt says its image is
    not attached.
    """
    attached: list[AttachedImage] = []
    for source in choose_visual_sources(sources, max_images):
        key = source.hit.media
        assert key is not None  # is_visual guarantees it
        try:
            with media.open(key) as raw:
                image = resize_for_model(raw, max_side, max_pixels)
        except (NotFound, OSError, ValueError) as exc:
            log.warning("source [%d] %s: image %r not attached: %s",
                        source.index, source.hit.source, key, exc)
            continue
        attached.append(AttachedImage(source.index, image, to_data_url(image)))
    return attached
