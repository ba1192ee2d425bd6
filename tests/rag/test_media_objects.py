"""Media in object storage (``store.media_dir: s3://...``) hold what the filesystem store
holds, under the same names. fsspec's in-memory filesystem stands in for the bucket (a
test double for a remote thing: the code path is fsspec's, the one s3fs plugs into)."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import fsspec
import pytest
from PIL import Image

from pipeline import Pipeline
from rag.errors import ConfigError, NotFound
from rag.media import MediaStore
from rag.media_objects import ObjectMediaStore, open_media
from rag.settings import load_settings
from tests.conftest import EXAMPLES, offline

KEY = "cd" * 16 + "-p2"


@pytest.fixture
def bucket() -> str:
    return f"memory://bucket-{uuid.uuid4().hex}/media"


def test_an_object_store_keeps_what_a_folder_keeps(bucket: str, tmp_path: Path) -> None:
    folder, objects = MediaStore(tmp_path), ObjectMediaStore(bucket)
    picture = Image.new("RGB", (1200, 900), "teal")
    for media in (folder, objects):
        assert not media.exists(KEY)
        media.put(KEY, picture)
        assert media.exists(KEY)
    assert objects.read_bytes(KEY) == folder.read_bytes(KEY)
    assert objects.read_bytes(KEY, 300) == folder.read_bytes(KEY, 300)
    with Image.open(io.BytesIO(objects.read_bytes(KEY, 300))) as thumb:
        assert max(thumb.size) == 384
    fs = fsspec.filesystem("memory")
    names = sorted(p.rsplit("/", 1)[1] for p in fs.find(bucket.removeprefix("memory://")))
    assert names == sorted(p.name for p in tmp_path.rglob("*.webp"))
    objects.delete(KEY)
    assert not objects.exists(KEY)
    with pytest.raises(NotFound):
        objects.read_bytes(KEY)
    with pytest.raises(NotFound):
        objects.read_bytes("../../etc/passwd")


def test_ingest_writes_page_images_to_the_bucket_and_serves_them(
    bucket: str, tmp_path: Path
) -> None:
    settings = offline(tmp_path / "data", store={"media_dir": bucket})
    assert isinstance(open_media(settings), ObjectMediaStore)
    with Pipeline(settings) as pipe:
        report = pipe.ingest("docs", [str(EXAMPLES / "corpus" / "disk_full_terminal.png")])
        assert not report.failed
        hit = pipe.search("docs", "disk full", limit=1)[0]
        assert hit.media is not None
        with Image.open(io.BytesIO(pipe.media_bytes(hit.media, 128))) as thumb:
            assert max(thumb.size) == 128
    assert not (tmp_path / "data" / "media").exists(), "nothing went to the data dir"


def test_a_scheme_without_its_package_says_what_to_install() -> None:
    settings = load_settings("offline", overrides={"store": {"media_dir": "nosuch://b/m"}})
    with pytest.raises(ConfigError, match="store.media_dir"):
        open_media(settings)
