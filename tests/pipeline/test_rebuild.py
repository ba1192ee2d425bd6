"""Rebuilding what is stored: a document's record keeps the fingerprints of the text
pipeline that wrote it; the next ingest rewrites documents whose parts changed (bytes
unchanged), ``rebuild=True`` rewrites all, and the report says how many and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import Pipeline, versions
from pipeline.versions import (
    CHUNKING,
    FORCED,
    FRAMES,
    OCR,
    SPEECH,
    stale_parts,
    text_pipeline,
)
from rag.payload import COMPLETE, PIPELINE, record_payload, record_point_id
from rag.types import Point
from tests.conftest import offline
from tests.ingest.files import encode, text_image

C = "c"
PNG = "image/png"
MD = "text/markdown"


def _settings(tmp_path: Path, **overrides: object):  # type: ignore[no-untyped-def]
    ingest = {"workers": 0, **overrides.pop("ingest", {})}  # type: ignore[dict-item]
    return offline(tmp_path / "data", ingest=ingest, **overrides)


# --- which parts are stale -------------------------------------------------------------


def test_the_same_settings_are_current(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    for mime in (PNG, MD, "application/pdf"):
        assert stale_parts(text_pipeline(s, mime), mime, s) == []


def test_ocr_settings_concern_only_kinds_ocr_reads(tmp_path: Path) -> None:
    before = _settings(tmp_path)
    after = _settings(tmp_path, ocr={"stretch_x": 1.0})
    assert stale_parts(text_pipeline(before, PNG), PNG, after) == [OCR]
    assert stale_parts(text_pipeline(before, "application/pdf"), "application/pdf",
                       after) == [OCR]
    assert stale_parts(text_pipeline(before, MD), MD, after) == []
    # Runtime and threads give the same text: nothing to rebuild.
    same = _settings(tmp_path, ocr={"threads": 1, "runtime": "onnxruntime"})
    assert stale_parts(text_pipeline(before, PNG), PNG, same) == []


def test_turning_ocr_on_rebuilds_pictures(tmp_path: Path) -> None:
    off = _settings(tmp_path, ocr={"enabled": False})
    assert text_pipeline(off, PNG)[OCR] == "off"
    assert stale_parts(text_pipeline(off, PNG), PNG, _settings(tmp_path)) == [OCR]


def test_keyframes_and_speech_concern_videos_and_audio(tmp_path: Path) -> None:
    before = _settings(tmp_path)
    frames = _settings(tmp_path, video={"scene_threshold": 0.01})
    speech = _settings(tmp_path, transcribe={"window_s": 20.0})
    mp4, mp3 = "video/mp4", "audio/mpeg"
    assert stale_parts(text_pipeline(before, mp4), mp4, frames) == [FRAMES]
    assert stale_parts(text_pipeline(before, mp3), mp3, frames) == []
    assert stale_parts(text_pipeline(before, mp4), mp4, speech) == [SPEECH]
    assert stale_parts(text_pipeline(before, mp3), mp3, speech) == [SPEECH]
    assert stale_parts(text_pipeline(before, PNG), PNG, speech) == []


def test_chunking_concerns_every_kind(tmp_path: Path) -> None:
    before = _settings(tmp_path)
    after = _settings(tmp_path, chunking={"size": 400})
    for mime in (PNG, MD):
        assert stale_parts(text_pipeline(before, mime), mime, after) == [CHUNKING]


def test_records_from_before_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    s = _settings(tmp_path)
    # Written by the first OCR and chunking versions: current while those are.
    monkeypatch.setattr(versions, "OCR_TEXT_VERSION", versions._LEGACY[OCR])
    assert stale_parts(None, PNG, s) == [] == stale_parts(None, MD, s)
    monkeypatch.setattr(versions, "OCR_TEXT_VERSION", versions._LEGACY[OCR] + 1)
    assert stale_parts(None, PNG, s) == [OCR]
    assert stale_parts(None, "application/pdf", s) == [OCR]
    assert stale_parts(None, MD, s) == []
    assert stale_parts(None, PNG, _settings(tmp_path, ocr={"enabled": False})) == []


# --- through the pipeline ----------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    doc = tmp_path / "manual.md"
    doc.write_text("# Pump manual\n\n" + "\n\n".join(
        f"## Step {i}\n\nThe pump step {i} needs torque {i * 3 + 7} Nm and gasket G{i % 9}. "
        * 5 for i in range(30)))
    shot = tmp_path / "invoice.png"
    shot.write_bytes(encode(text_image(["Invoice 4471", "Ships from Rotterdam"]), "PNG"))
    return [str(doc), str(shot)]


def _docs(pipe: Pipeline) -> dict[str, int]:
    return {d["source"]: d["points"] for d in pipe.documents(C)}


def _ingest(tmp_path: Path, files: list[str], rebuild: bool = False, **overrides: object
            ) -> tuple[list[tuple[str, str | None]], dict[str, int], int, str]:
    pipe = Pipeline(_settings(tmp_path, **overrides))
    try:
        report = pipe.ingest(C, files, rebuild=rebuild)
        return ([(f.status, f.reason) for f in report.files], _docs(pipe), pipe.count(C),
                report.summary())
    finally:
        pipe.close()


def test_a_changed_part_rebuilds_its_documents_once(tmp_path: Path, files: list[str]
                                                    ) -> None:
    first, docs, count, _ = _ingest(tmp_path, files)
    assert first == [("added", None), ("added", None)]
    assert _ingest(tmp_path, files)[0] == [("unchanged", None), ("unchanged", None)]

    # Smaller chunks: both documents are written again, the manual into more points.
    statuses, smaller, n, summary = _ingest(tmp_path, files, chunking={"size": 300})
    assert statuses == [("rebuilt", "chunking changed"), ("rebuilt", "chunking changed")]
    assert "2 rebuilt (chunking changed)" in summary
    assert smaller[files[0]] > docs[files[0]]
    assert n == sum(smaller.values())  # the old version's points are gone, none twice
    assert _ingest(tmp_path, files, chunking={"size": 300})[0] == [
        ("unchanged", None), ("unchanged", None)]

    # An OCR change rebuilds the picture only.
    statuses, _, _, summary = _ingest(tmp_path, files, chunking={"size": 300},
                                      ocr={"stretch_x": 1.0})
    assert statuses == [("unchanged", None), ("rebuilt", "ocr changed")]
    assert "1 rebuilt (ocr changed)" in summary


def test_rebuild_rewrites_everything_and_changes_nothing_else(tmp_path: Path,
                                                              files: list[str]) -> None:
    _, docs, count, _ = _ingest(tmp_path, files)
    statuses, after, n, summary = _ingest(tmp_path, files, rebuild=True)
    assert statuses == [("rebuilt", FORCED), ("rebuilt", FORCED)]
    assert "2 rebuilt (rebuild requested)" in summary
    assert (after, n) == (docs, count)
    pipe = Pipeline(_settings(tmp_path))
    try:
        hits = pipe.search(C, "Where does the invoice ship from?", limit=3)
        assert any("Rotterdam" in h.text for h in hits)
    finally:
        pipe.close()


def test_records_from_before_versions_rebuild_what_ocr_read(
        tmp_path: Path, files: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _ingest(tmp_path, files)
    pipe = Pipeline(_settings(tmp_path))
    try:  # make the records look like those of an older mmrag: no fingerprints
        for v in pipe._records.versions(C):
            assert v.record.pipeline is not None
            payload = record_payload(v.doc_id, v.source, v.mime, v.record.points, None,
                                     COMPLETE, v.record.written_at)
            assert PIPELINE not in payload
            pipe._store.upsert(C, [Point(id=record_point_id(v.doc_id), vectors={},
                                         payload=payload)])
        assert all(v.record.pipeline is None for v in pipe._records.versions(C))
    finally:
        pipe.close()
    monkeypatch.setattr(versions, "OCR_TEXT_VERSION", versions._LEGACY[OCR])
    assert _ingest(tmp_path, files)[0] == [("unchanged", None), ("unchanged", None)]
    monkeypatch.setattr(versions, "OCR_TEXT_VERSION", versions._LEGACY[OCR] + 1)
    assert _ingest(tmp_path, files)[0] == [("unchanged", None), ("rebuilt", "ocr changed")]
    assert _ingest(tmp_path, files)[0] == [("unchanged", None), ("unchanged", None)]


def test_a_rebuild_that_fails_keeps_the_stored_version(tmp_path: Path, files: list[str]
                                                       ) -> None:
    _, docs, count, _ = _ingest(tmp_path, files)
    # The picture now passes a pixel limit: its rebuild fails, its old version stays.
    pipe = Pipeline(_settings(tmp_path, ingest={"max_pixels": 1000}))
    try:
        report = pipe.ingest(C, files, rebuild=True)
        assert [f.status for f in report.files] == ["rebuilt", "failed"]
        assert files[1] in (report.files[1].error or "")
        assert _docs(pipe) == docs
        assert pipe.count(C) == count
    finally:
        pipe.close()
