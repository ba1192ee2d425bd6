"""Image selection, resizing and encoding for the model."""

from __future__ import annotations

import base64
import io

from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from rag.generate.images import (
    choose_visual_sources,
    fit_size,
    load_images,
    resize_for_model,
    to_data_url,
)
from rag.generate.prompt import select_sources
from rag.media import MediaStore
from rag.types import Hit


def decode(url: str) -> Image.Image:
    assert url.startswith("data:image/jpeg;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert img.format == "JPEG"
    return img


@given(st.integers(1, 20000), st.integers(1, 20000), st.integers(0, 4096),
       st.integers(0, 50_000_000))
def test_fit_size_respects_both_limits_and_never_upscales(
    w: int, h: int, max_side: int, max_pixels: int
) -> None:
    nw, nh = fit_size(w, h, max_side, max_pixels)
    assert 1 <= nw <= w and 1 <= nh <= h
    if max_side > 0:
        assert max(nw, nh) <= max(max_side, 1)
    if max_pixels > 0 and min(w, h) > 1:
        assert nw * nh <= max(max_pixels, max(nw, nh))
    if (max_side <= 0 or max(w, h) <= max_side) and (max_pixels <= 0 or w * h <= max_pixels):
        assert (nw, nh) == (w, h)


def test_fit_size_keeps_aspect_ratio() -> None:
    assert fit_size(4000, 3000, 1024, 10**9) == (1024, 768)
    assert fit_size(2000, 1000, 4096, 500_000) == (1000, 500)
    assert fit_size(640, 480, 1024, 1024 * 1024) == (640, 480)


def test_resize_flattens_alpha_on_white() -> None:
    rgba = Image.new("RGBA", (100, 50), (255, 0, 0, 0))
    out = resize_for_model(rgba, 64, 10_000)
    assert out.mode == "RGB" and out.size == (64, 32)
    assert out.getpixel((10, 10)) == (255, 255, 255)
    assert decode(to_data_url(out)).size == (64, 32)


def test_load_images_within_limits_and_numbered(media: MediaStore, hits: list[Hit]) -> None:
    sources = select_sources(hits, 8, 12000)
    images = load_images(sources, media, max_images=4, max_side=512, max_pixels=200_000)
    assert [img.index for img in images] == [2, 4]
    for img in images:
        decoded = decode(img.data_url)
        assert decoded.size == img.size
        assert max(decoded.size) <= 512 and decoded.width * decoded.height <= 200_000
    # The 1600x1000 label keeps its aspect ratio.
    label = images[0]
    assert abs(label.size[0] / label.size[1] - 1.6) < 0.02


def test_max_images_keeps_the_best_scored(media: MediaStore, hits: list[Hit]) -> None:
    sources = select_sources(hits, 8, 12000)
    assert [s.index for s in choose_visual_sources(sources, 1)] == [2]  # 0.84 beats 0.62
    hits[3].score = 0.99
    sources = select_sources(hits, 8, 12000)
    assert [s.index for s in choose_visual_sources(sources, 1)] == [4]
    assert [img.index for img in load_images(sources, media, 1, 512, 200_000)] == [4]
    assert load_images(sources, media, 0, 512, 200_000) == []


def test_missing_media_is_skipped_not_fatal(media: MediaStore, hits: list[Hit]) -> None:
    hits[1].media = "deadbeefdeadbeef-p9"
    sources = select_sources(hits, 8, 12000)
    assert [img.index for img in load_images(sources, media, 4, 512, 200_000)] == [4]


def test_text_chunks_of_a_stored_page_attach_it_once() -> None:
    from rag.generate.prompt import source_header
    from rag.types import Hit

    page = "cd" * 32 + "-p3"
    hits = [
        Hit(id="1", score=0.9, source="a.pdf", page=3, modality="text", text="x", media=page),
        Hit(id="2", score=0.8, source="a.pdf", page=3, modality="text", text="y", media=page),
        Hit(id="3", score=0.7, source="b.txt", page=0, modality="text", text="z"),
        Hit(id="4", score=0.1, source="c.png", page=1, modality="image", text="",
            media="ef" * 32 + "-p1"),
    ]
    sources = select_sources(hits, 8, 1000)
    assert [s.is_visual for s in sources] == [True, True, False, True]
    # Pictures first, then one image per page: [2] shares [1]'s page.
    assert [s.index for s in choose_visual_sources(sources, 4)] == [1, 4]
    assert [s.index for s in choose_visual_sources(sources, 1)] == [4]
    assert source_header(sources[0], True) == (
        "[1] a.pdf, page 3 (text, its page attached as Image [1])")
    assert source_header(sources[1], False) == "[2] a.pdf, page 3 (text)"
