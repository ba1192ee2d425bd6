"""Files read where they are: hashing in pieces, change detection, odd files, limits
chosen by type (ingest/blob.py, ingest.loaders.admit)."""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
from pathlib import Path

import pytest

from ingest.blob import PIECE, FileBlob, MemoryBlob
from ingest.loaders import admit
from rag.errors import FileChanged, LimitExceeded, NotFound
from rag.settings import IngestSettings, VideoSettings
from tests.av_media import make_audio, tone


def test_a_file_is_hashed_in_pieces_to_the_sha256_of_its_bytes(tmp_path: Path) -> None:
    data = os.urandom(3 * PIECE + 123)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    blob = FileBlob.at("big.bin", str(path))
    assert blob.size == len(data)
    assert blob.sha256() == hashlib.sha256(data).hexdigest()
    assert blob.head(4) == data[:4] and blob.read() == data
    assert MemoryBlob("m", data).sha256() == blob.sha256()


def test_a_file_that_changes_after_it_was_first_seen_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("version one")
    blob = FileBlob.at("notes.txt", str(path))
    blob.sha256()
    path.write_text("version two, longer")
    with pytest.raises(FileChanged, match=r"^notes\.txt: the file changed.*ingest it again"):
        blob.open()
    with pytest.raises(FileChanged):
        blob.verify()
    # Same size, new content: the modification time tells.
    path.write_text("version one")
    os.utime(path, ns=(0, 12345))
    with pytest.raises(FileChanged):
        blob.read()


def test_a_blob_pickles_as_its_path_not_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "talk.wav"
    path.write_bytes(make_audio(tone(5.0)))
    blob = FileBlob.at("talk.wav", str(path))
    shipped = pickle.dumps(blob)
    assert len(shipped) < 1024 < path.stat().st_size
    assert pickle.loads(shipped).read() == path.read_bytes()


def test_missing_files_folders_and_pipes_fail_by_name_without_hanging(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"^gone\.pdf: cannot read"):
        FileBlob.at("gone.pdf", str(tmp_path / "gone.pdf"))
    with pytest.raises(NotFound, match="not a regular file"):
        FileBlob.at("dir", str(tmp_path))
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def open_fifo() -> None:
        try:
            FileBlob.at("pipe", str(fifo))
        except BaseException as exc:
            outcome.append(exc)

    t = threading.Thread(target=open_fifo, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "opening a FIFO blocked"
    assert isinstance(outcome[0], NotFound) and "not a regular file" in str(outcome[0])


def test_the_size_limit_is_chosen_by_type_before_the_file_is_read(tmp_path: Path) -> None:
    ingest = IngestSettings(max_file_bytes=1000)
    audio = MemoryBlob("memo.wav", make_audio(tone(1.0)))
    assert audio.size > 1000
    # Streamed media: the video limit, not the documents' one.
    assert admit("memo.wav", audio, ingest=ingest, video=VideoSettings()) == "audio/wav"
    with pytest.raises(LimitExceeded, match=r"^memo\.wav: .*\(video\.max_file_bytes\)"):
        admit("memo.wav", audio, ingest=ingest, video=VideoSettings(max_file_bytes=1000))
    text = MemoryBlob("big.txt", b"x" * 1001)
    with pytest.raises(LimitExceeded, match=r"^big\.txt: .*\(ingest\.max_file_bytes\)"):
        admit("big.txt", text, ingest=ingest, video=VideoSettings())
