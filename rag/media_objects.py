"""Stored images in object storage: the :class:`~rag.media.MediaStore` contract over an
fsspec URL (``s3://bucket/media`` through s3fs, ``gs://``, ``az://``, ``memory://``...).

Why: on a cluster, ingest workers on many machines write page images and every API
replica serves them; an S3-compatible bucket (AWS, MinIO, Ceph RGW, R2) is the usual
place all of them reach without a shared filesystem. fsspec is the well-kept common
interface (pandas, Dask, Hugging Face use it) and s3fs its S3 implementation
(``pip install 'mmrag[s3]'``); credentials and endpoints come from their usual
environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL`` for
MinIO), never from mmrag's settings. Keys and thumbnail sizes are the filesystem
store's, so both hold the same objects under the same names. An object is written in one
PUT, which object stores apply atomically: readers see the old object or the new one.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any, BinaryIO

from PIL import Image

from rag.errors import ConfigError, NotFound
from rag.media import WEBP_METHOD, MediaStore, copy_verified
from rag.payload import original_key, parse_media_key, parse_original_key, thumb_side
from rag.settings import Settings


class ObjectMediaStore(MediaStore):
    """:class:`MediaStore` on an fsspec filesystem named by a URL."""

    def __init__(self, url: str) -> None:
        try:
            import fsspec

            fs, root = fsspec.core.url_to_fs(url)
        except ImportError as exc:  # fsspec knows the scheme, its backend is missing
            raise ConfigError(
                f"store.media_dir {url!r} needs the package for its scheme ({exc}); for "
                "s3:// install it with: pip install 'mmrag[s3]'") from exc
        except ValueError as exc:
            raise ConfigError(f"store.media_dir {url!r}: {exc}") from exc
        self.url = url
        self.fs: Any = fs
        self.prefix = root.rstrip("/")

    def _key_path(self, key: str, side: int | None = None) -> str:
        if parse_media_key(key) is None:
            raise NotFound(f"media {key!r} does not exist")
        name = f"{key}.webp" if side is None else f"{key}.{side}.webp"
        return f"{self.prefix}/{key[:2]}/{name}"

    def write(self, key: str, data: bytes) -> str:
        self.fs.pipe_file(self._key_path(key), data)
        return key

    def write_original(self, doc_id: str, src: BinaryIO, name: str = "") -> str:
        """Originals of videos and recordings go to the object store beside the frames,
        streamed and verified as in the folder store; a copy whose bytes do not match
        is removed again."""
        key = original_key(doc_id)
        path = f"{self.prefix}/{doc_id[:2]}/{key}.bin"
        if not self.fs.exists(path):
            # Uploaded under a temporary name first: closing the stream commits it (an
            # S3 multipart upload completes), so only a verified copy gets the real name.
            tmp = f"{path}.{os.getpid()}.tmp"
            try:
                with self.fs.open(tmp, "wb") as dst:
                    copy_verified(src, dst, doc_id, name or key)
                self.fs.mv(tmp, path)
            finally:
                with contextlib.suppress(Exception):
                    if self.fs.exists(tmp):
                        self.fs.rm_file(tmp)
        return key

    def original_path(self, key: str) -> Path:
        # Range requests are served from a local file; an object store has none.
        if parse_original_key(key) is None:
            raise NotFound(f"media {key!r} does not exist")
        raise NotFound(f"media {key!r} is kept in the object store {self.url}: playing "
                       "originals needs a folder media store (store.media_dir on a shared "
                       "filesystem); keyframes and transcripts are served as usual")

    def exists(self, key: str) -> bool:
        try:
            return bool(self.fs.exists(self._key_path(key)))
        except NotFound:
            return False

    def _get(self, path: str) -> bytes | None:
        try:
            data: bytes = self.fs.cat_file(path)
        except FileNotFoundError:
            return None
        return data

    def read_bytes(self, key: str, side: int | None = None) -> bytes:
        original = self._get(self._key_path(key))
        if original is None:
            raise NotFound(f"media {key!r} does not exist")
        if side is None:
            return original
        side = thumb_side(int(side))
        thumb_path = self._key_path(key, side)
        cached = self._get(thumb_path)
        if cached is not None:
            return cached
        with Image.open(io.BytesIO(original)) as img:
            if max(img.size) <= side:
                return original
            img.thumbnail((side, side))
            buf = io.BytesIO()
            img.save(buf, format="WEBP", quality=80, method=WEBP_METHOD)
        self.fs.pipe_file(thumb_path, buf.getvalue())
        return buf.getvalue()

    def delete(self, key: str) -> None:
        folder = self._key_path(key).rsplit("/", 1)[0]
        for path in self.fs.glob(f"{folder}/{key}.*"):
            self.fs.rm_file(path)


def open_media(settings: Settings) -> MediaStore:
    """The media store ``store.media_dir`` names: an object store for a URL with a
    scheme, else a folder (``<data_dir>/media`` when empty)."""
    if "://" in settings.store.media_dir:
        return ObjectMediaStore(settings.store.media_dir)
    return MediaStore(settings.media_path)
