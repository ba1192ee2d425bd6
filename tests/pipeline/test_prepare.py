"""Preparing one file for embedding (pipeline/prepare.py): what ingest workers ship back
for CLIP (the pixels the model looks at, not the rendered page, and the same vectors
either way), pages released one by one, and the per-file limits."""

from __future__ import annotations

import gc
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from ingest.hashing import sha256_bytes
from pipeline.prepare import Prepared, WorkerPool, prepare
from rag.encoders.clip import OpenClipEncoder
from rag.errors import LimitExceeded
from rag.media import MediaStore
from rag.settings import Settings
from tests.conftest import EXAMPLES, offline, tiny_clip
from tests.ingest.files import text_pdf


def _pixels(prepared: Prepared) -> list[Image.Image]:
    return [c.image for c in prepared.chunks if c.image is not None]


def test_workers_ship_clip_input_pixels_that_give_the_same_vectors(tmp_path: Path) -> None:
    settings = tiny_clip(tmp_path / "data", ocr={"enabled": False})
    enc = OpenClipEncoder(settings.clip)
    torch.manual_seed(0)
    enc.load()
    geometry = enc.geometry()
    assert geometry is not None
    picture = Image.new("RGB", (1600, 1200), "white")
    ImageDraw.Draw(picture).rectangle((100, 200, 1300, 900), fill="navy")
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    files = {"shot.png": buf.getvalue(),
             "doc.pdf": (EXAMPLES / "corpus" / "api_rate_limits.pdf").read_bytes()}
    pool = WorkerPool(settings, 2, geometry)
    try:
        for name, data in files.items():
            doc_id = sha256_bytes(data)
            full = prepare(settings, name, data, doc_id, {}, None, True, None)
            shipped = pool.submit(name, data, doc_id, {}, None, True).result(timeout=120)
            originals, small = _pixels(full), _pixels(shipped)
            assert originals and len(small) == len(originals), name
            assert max(im.size[0] for im in originals) > 500  # a page or the picture itself
            assert {im.size for im in small} == {(32, 32)}, name
            np.testing.assert_array_equal(enc.encode_images(originals), enc.encode_images(small))
            # Everything else about the file is the same.
            assert [(c.chunk, c.text, c.media) for c in shipped.chunks] == [
                (c.chunk, c.text, c.media) for c in full.chunks]
    finally:
        pool.close()


def _media_files(settings: Settings) -> list[Path]:
    return [f for f in (settings.data_path / "media").rglob("*") if f.is_file()]


def test_pages_are_released_one_by_one_not_held_to_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long PDF must not keep every rendered page alive until its last page is read
    (a 200-page PDF held 1.6 GB in a worker that way)."""
    settings = tiny_clip(tmp_path / "data", ocr={"enabled": False})
    enc = OpenClipEncoder(settings.clip)
    enc.load()
    pdf = text_pdf([[f"page {i} line {j}" for j in range(5)] for i in range(8)])
    alive: list[int] = []
    encode = MediaStore.encode

    def counting(image: Image.Image, max_side: int = 2048) -> bytes:
        gc.collect()
        alive.append(sum(1 for o in gc.get_objects()
                         if issubclass(type(o), Image.Image) and o.width >= 500))
        return encode(image, max_side)

    monkeypatch.setattr(MediaStore, "encode", staticmethod(counting))
    prepared = prepare(settings, "long.pdf", pdf, sha256_bytes(pdf), {}, None, True, None,
                       enc.geometry())
    assert len(alive) == 8 and max(alive) <= 2, alive  # the page being stored (+ a copy)
    assert len(_media_files(settings)) == 8
    assert sum(1 for c in prepared.chunks if c.modality == "page") == 8


@pytest.mark.parametrize(("limit", "value", "setting"), [
    ("max_chunks", 2, "ingest.max_chunks"), ("max_chars", 60, "ingest.max_chars")])
def test_a_file_over_a_per_file_limit_fails_by_name_and_stores_no_media(
    tmp_path: Path, limit: str, value: int, setting: str
) -> None:
    settings = offline(tmp_path / "data", ingest={limit: value}, ocr={"enabled": False})
    pdf = text_pdf([[f"page {i}: the quick brown fox jumps"] for i in range(4)])
    with pytest.raises(LimitExceeded, match=rf"^big\.pdf: more than .*\({setting}\)"):
        prepare(settings, "big.pdf", pdf, sha256_bytes(pdf), {}, None, False, None)
    assert _media_files(settings) == []  # earlier pages' renders were never written
    # Under the limit the same file lands with a stored image per page.
    ok = offline(tmp_path / "data")
    prepared = prepare(ok, "big.pdf", pdf, sha256_bytes(pdf), {}, None, False, None)
    assert prepared.chunks and len(_media_files(ok)) == 4
