"""Stored images: pictures and rendered pages, kept on disk under ``<data_dir>/media``.

Points carry only a ``media`` key; the API serves ``/v1/media/{key}`` from here and the
generator attaches these images to the VLM request. Keys are content-derived
(``<doc_id>-p<page>``), so re-ingesting writes the same file again, never a second one.

Thumbnails come in a few fixed sizes (:data:`THUMB_SIDES`): a requested side is snapped
up to the next one (the largest caps it), so a picture has at most ``len(THUMB_SIDES)``
cached thumbnails however many sizes clients ask for (a file per requested size made
4,081 thumbnails, 10.9 MB, of one picture asked every size from 16 to 4096).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from rag.errors import FileChanged, NotFound
from rag.payload import (
    THUMB_SIDES,
    media_key,
    original_key,
    parse_media_key,
    parse_original_key,
    thumb_side,
)

__all__ = ["THUMB_SIDES", "MediaStore", "media_key", "thumb_side"]


# libwebp's effort, 0-6 (its default is 4). 2 encodes screenshots and photos 2.3x faster
# for files 1.4% larger at the same quality; ingest writes one file per picture and page.
WEBP_METHOD = 2


COPY_PIECE = 1024 * 1024


def copy_verified(src: BinaryIO, dst: BinaryIO, doc_id: str, name: str) -> None:
    """Copy an original in 1 MiB pieces, checking that its SHA-256 is ``doc_id``: the
    store is content-addressed, and a file that changed after it was hashed must not be
    kept under the old content's name."""
    digest = hashlib.sha256()
    while piece := src.read(COPY_PIECE):
        digest.update(piece)
        dst.write(piece)
    if digest.hexdigest() != doc_id:
        raise FileChanged(f"{name}: the file changed while it was being ingested (its "
                          "bytes no longer match their hash); ingest it again once it is "
                          "complete")


class MediaStore:
    """Images as WebP files, one per key, plus cached thumbnails."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str, side: int | None = None) -> Path:
        if parse_media_key(key) is None:
            raise NotFound(f"media {key!r} does not exist")
        name = f"{key}.webp" if side is None else f"{key}.{side}.webp"
        return self.root / key[:2] / name

    def put(self, key: str, image: Image.Image, max_side: int = 2048) -> str:
        if not self.exists(key):
            self.write(key, self.encode(image, max_side))
        return key

    @staticmethod
    def encode(image: Image.Image, max_side: int = 2048) -> bytes:
        """The WebP bytes :meth:`put` stores for ``image`` (longer side at most
        ``max_side``): a rendered A4 page is ~6 MB of pixels and ~100-300 KB of WebP."""
        img = image.convert("RGB") if image.mode not in ("RGB", "L") else image.copy()
        img.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        img.save(buf, format="WEBP", quality=85, method=WEBP_METHOD)
        return buf.getvalue()

    def write(self, key: str, data: bytes) -> str:
        """Store encoded bytes (from :meth:`encode`) under ``key``, atomically."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return key

    def exists(self, key: str) -> bool:
        try:
            return self._path(key).exists()
        except NotFound:
            return False

    def read_bytes(self, key: str, side: int | None = None) -> bytes:
        """WebP bytes of the image, or of its thumbnail for a requested longest ``side``
        (snapped up to one of :data:`THUMB_SIDES`; the image itself when that is no
        smaller than the image, so nothing larger than it is ever written)."""
        path = self._path(key)
        if not path.exists():
            raise NotFound(f"media {key!r} does not exist")
        if side is None:
            return path.read_bytes()
        side = thumb_side(int(side))
        thumb = self._path(key, side)
        if not thumb.exists():
            with Image.open(path) as img:
                if max(img.size) <= side:
                    return path.read_bytes()
                img.thumbnail((side, side))
                buf = io.BytesIO()
                img.save(buf, format="WEBP", quality=80, method=WEBP_METHOD)
            tmp = thumb.with_suffix(".tmp")
            tmp.write_bytes(buf.getvalue())
            tmp.replace(thumb)
        return thumb.read_bytes()

    def open(self, key: str) -> Image.Image:
        data = self.read_bytes(key)
        img = Image.open(io.BytesIO(data))
        img.load()
        return img

    # --- originals of videos and recordings --------------------------------------------

    def original_path(self, key: str) -> Path:
        """Where the original of a video or recording is kept (``<doc_id>-orig``); served
        with HTTP Range. Content-addressed like every media file."""
        doc_id = parse_original_key(key)
        if doc_id is None:
            raise NotFound(f"media {key!r} does not exist")
        return self.root / doc_id[:2] / f"{key}.bin"

    def write_original(self, doc_id: str, src: BinaryIO, name: str = "") -> str:
        """Keep the original of a video or recording, streamed from ``src`` (never whole
        in memory) and verified against ``doc_id`` (:func:`copy_verified`)."""
        key = original_key(doc_id)
        path = self.original_path(key)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            try:
                with open(tmp, "wb") as dst:
                    copy_verified(src, dst, doc_id, name or key)
                tmp.replace(path)
            finally:
                tmp.unlink(missing_ok=True)
        return key

    def delete(self, key: str) -> None:
        path = self._path(key)
        for p in path.parent.glob(f"{key}.*"):
            p.unlink(missing_ok=True)
