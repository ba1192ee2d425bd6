"""Large media from disk through the Pipeline: read where they are, hashed in pieces,
never whole in memory; a file that changes mid-ingest stores nothing under a wrong id."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from ingest.blob import FileBlob
from pipeline import Pipeline
from pipeline.runner import file_items
from rag.errors import FileChanged
from rag.media import MediaStore
from rag.payload import original_key
from tests.av_media import Shot, make_video, slide, tone
from tests.conftest import offline
from tests.ingest.test_media import raw_video

pytestmark = pytest.mark.integration


def test_a_video_over_the_document_limit_is_ingested_from_its_path(tmp_path: Path) -> None:
    video = tmp_path / "in" / "screen.avi"
    video.parent.mkdir()
    raw_video(video, seconds=30)
    (tmp_path / "in" / "big.md").write_text("# notes\n" + "x" * 3000)
    pipe = Pipeline(offline(tmp_path / "data", ingest={"workers": 0, "max_file_bytes": 2000},
                            transcribe={"enabled": False}))
    try:
        report = pipe.ingest("c", [str(tmp_path / "in")])
        status = {Path(f.source).name: f for f in report.files}
        assert status["screen.avi"].status == "added", status["screen.avi"].error
        doc_id = hashlib.sha256(video.read_bytes()).hexdigest()
        assert status["screen.avi"].doc_id == doc_id
        # The original kept for playback is the file, byte for byte.
        path, mime = pipe.original_file(original_key(doc_id))
        assert mime == "video/x-msvideo" and path.read_bytes() == video.read_bytes()
        # Documents are still parsed in memory, under their own limit.
        assert status["big.md"].status == "failed"
        assert "ingest.max_file_bytes" in str(status["big.md"].error)
        again = pipe.ingest("c", [str(video)])
        assert [f.status for f in again.files] == ["unchanged"]
    finally:
        pipe.close()


class _ChangesAfterHashing(FileBlob):
    """A file someone rewrites right after mmrag hashed it (a download still running)."""

    def sha256(self) -> str:
        digest = super().sha256()
        Path(self.opener.path).write_bytes(  # type: ignore[attr-defined]
            make_video([Shot(slide(["a different video"]), 2.0)], audio=tone(2.0)))
        return digest


def test_a_video_that_changes_while_it_is_ingested_fails_and_stores_nothing(
        tmp_path: Path) -> None:
    video = tmp_path / "talk.mp4"
    video.write_bytes(make_video([Shot(slide(["first take"]), 2.0)], audio=tone(2.0)))
    pipe = Pipeline(offline(tmp_path / "data", ingest={"workers": 0}))
    try:
        ((name, _),) = file_items([str(video)])
        report = pipe._runner.run("c", [(name, lambda: _ChangesAfterHashing.at(name, str(video)))])
        (result,) = report.files
        assert result.status == "failed"
        assert "changed while it was being ingested" in str(result.error)
        assert pipe.documents("c") == []
        media = tmp_path / "data" / "media"
        assert not [p for p in media.rglob("*") if p.is_file()], "media left behind"
    finally:
        pipe.close()


def test_an_original_whose_bytes_do_not_match_its_id_is_not_kept(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    data = b"\x00" * 5000
    with pytest.raises(FileChanged, match="^clip.mp4: the file changed"):
        store.write_original("ab" * 32, io.BytesIO(data), "clip.mp4")
    assert not [p for p in (tmp_path / "media").rglob("*") if p.is_file()]
    doc_id = hashlib.sha256(data).hexdigest()
    key = store.write_original(doc_id, io.BytesIO(data), "clip.mp4")
    assert store.original_path(key).read_bytes() == data
