"""Stored media and their thumbnails: a bounded number of files per image."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from rag.media import MediaStore
from rag.payload import THUMB_SIDES, thumb_side

KEY = "ab" * 16 + "-p1"


def test_every_size_from_16_to_4096_leaves_a_few_thumbnails(tmp_path: Path) -> None:
    """Each requested size used to be cached as its own file: 4,081 per picture."""
    media = MediaStore(tmp_path)
    media.put(KEY, Image.new("RGB", (1600, 1200), "teal"))
    for size in range(16, 4097):
        data = media.read_bytes(KEY, size)
        with Image.open(io.BytesIO(data)) as img:
            # Never smaller than asked (up to the picture itself), never upscaled.
            assert max(img.size) == min(thumb_side(size), 1600), size
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    thumbs = [f for f in files if f != f"{KEY}.webp"]
    assert len(thumbs) <= len(THUMB_SIDES)
    assert thumbs == sorted(f"{KEY}.{s}.webp" for s in THUMB_SIDES if s < 1600)


def test_sizes_snap_up_to_the_next_fixed_side() -> None:
    assert [thumb_side(n) for n in (16, 64, 65, 360, 768, 769, 2048, 4096)] == [
        64, 64, 128, 384, 768, 1024, 2048, 2048]
    assert list(THUMB_SIDES) == sorted(THUMB_SIDES)
