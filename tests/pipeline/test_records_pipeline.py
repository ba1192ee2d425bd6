"""A record proves its document, through the whole pipeline (real MiniLM, BM25, Qdrant):
repairs of a record over missing points, writes and deletes that never finished, a delete
racing an upload job of the same file, a drop during a job, and two pipelines writing
versions of one source into one Qdrant store."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import Pipeline
from pipeline.gate import NoGate
from rag.errors import NotFound
from rag.payload import DELETING, WRITING
from rag.store.records import CONTENT
from rag.types import Filter
from tests.conftest import offline

C = "c"


def long_md(topic: str, n: int = 40) -> str:
    return f"# {topic}\n\n" + "\n\n".join(
        f"## Part {i}\n\nThe {topic} procedure step {i} needs torque {i * 3 + 7} Nm and "
        f"gasket G{i % 9}. " * 4 for i in range(n))


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[Pipeline]:
    p = Pipeline(offline(tmp_path / "data", ingest={"workers": 0}))
    yield p
    p.close()


def sources(pipe: Pipeline) -> dict[str, int]:
    return {r["source"]: r["points"] for r in pipe.documents(C)}


def test_a_record_over_missing_points_is_hidden_then_repaired(tmp_path: Path) -> None:
    # qdrant-client local mode on disk, so half of a document can be removed by id.
    pipe = Pipeline(offline(tmp_path / "data", ingest={"workers": 0},
                            store={"backend": "qdrant", "path": str(tmp_path / "q")}))
    doc = tmp_path / "manual.md"
    doc.write_text(long_md("pump"))
    note = tmp_path / "note.txt"
    note.write_text("The heron nests near pier four.")
    try:
        pipe.ingest(C, [str(doc), str(note)])
        whole = sources(pipe)
        assert whole[str(doc)] > 4
        # Half of the manual's points disappear behind mmrag's back (as an interrupted
        # filter delete of an older mmrag left them: local mode deletes row by row).
        ids = [h.id for h in pipe._store.scroll(C, Filter(source=str(doc), modality=CONTENT))]
        with pipe._store._call(C, "delete from") as client:  # type: ignore[attr-defined]
            client.delete(C, points_selector=ids[: len(ids) // 2], wait=True)
        assert str(doc) not in sources(pipe)  # not a document any more: not whole
        assert sources(pipe)[str(note)] == whole[str(note)]
        report = pipe.ingest(C, [str(doc), str(note)])
        assert [f.status for f in report.files] == ["repaired", "unchanged"]
        assert sources(pipe) == whole
        assert pipe.count(C) == sum(whole.values())
        assert pipe.ingest(C, [str(doc)]).files[0].status == "unchanged"
    finally:
        pipe.close()


def test_a_write_that_never_completed_is_invisible_then_rewritten(pipe: Pipeline,
                                                                  tmp_path: Path) -> None:
    doc = tmp_path / "valves.md"
    doc.write_text(long_md("valve", 200))
    note = tmp_path / "note.txt"
    note.write_text("The heron nests near pier four.")
    pipe.ingest(C, [str(doc), str(note)])
    n = sources(pipe)[str(doc)]
    assert n > pipe.settings.retrieval.prefetch_limit  # it fills every candidate slot
    doc_id = next(r["doc_id"] for r in pipe.documents(C) if r["source"] == str(doc))
    assert pipe.search(C, "valve torque gasket", limit=3)[0].source == str(doc)
    # As a process killed between its points and its record's "complete" leaves it:
    pipe._records._put(C, str(doc), doc_id, "text/markdown", n, None, WRITING, time.time())
    hits = pipe.search(C, "valve torque gasket", limit=3)
    # Hidden, and not crowding out the whole document either:
    assert [h.source for h in hits] == [str(note)]
    assert list(sources(pipe)) == [str(note)] and pipe.count(C) == sources(pipe)[str(note)]
    report = pipe.ingest(C, [str(doc)])
    assert report.files[0].status == "added" and sources(pipe)[str(doc)] == n
    assert pipe.search(C, "valve torque gasket", limit=1)[0].source == str(doc)


def test_an_interrupted_delete_leaves_nothing_visible(pipe: Pipeline, tmp_path: Path) -> None:
    doc = tmp_path / "pumps.md"
    doc.write_text(long_md("pump"))
    pipe.ingest(C, [str(doc)])
    n = sources(pipe)[str(doc)]
    doc_id = pipe.documents(C)[0]["doc_id"]
    # The delete's first step (the tombstone) and part of its second, then a crash:
    pipe._records._put(C, str(doc), doc_id, "", n, None, DELETING, time.time())
    assert pipe._store.delete(C, Filter(source=str(doc), modality=["page"])) >= 0
    assert pipe.search(C, "pump torque gasket", limit=5) == []
    assert pipe.documents(C) == [] and pipe.count(C) == 0
    # Deleting again finishes it; so would the next ingest of the file.
    assert pipe.delete_source(C, str(doc)) > 0
    assert pipe._store.count(C, Filter(source=str(doc))) == 0
    with pytest.raises(NotFound):
        pipe.delete_source(C, str(doc))


def test_delete_racing_an_upload_job_of_the_same_file(tmp_path: Path) -> None:
    """``DELETE ?source=`` while a job writes that very file: whatever the timing, the
    source ends either whole or gone, never half there, and never a record over missing
    points."""
    docs = tmp_path / "docs"
    docs.mkdir()
    big = docs / "big.md"
    big.write_text(long_md("compressor", 120))
    rng = random.Random(17)
    pipe = Pipeline(offline(tmp_path / "data", ingest={"workers": 0, "batch_size": 16}))
    try:
        pipe.ensure_collection(C)
        outcomes = set()
        for trial in range(5):
            big.write_text(long_md(f"compressor{trial}", 120))  # new bytes each trial
            job = pipe.submit_path_job(C, [str(big)], str(tmp_path))
            time.sleep(rng.uniform(0.0, 2.5))
            try:
                pipe.delete_source(C, str(big))
                deleted = True
            except NotFound:
                deleted = False
            while not pipe.job(job.id).final:
                time.sleep(0.05)
            state = pipe.job(job.id)
            listed = sources(pipe)
            stored = pipe._store.count(C, Filter(source=str(big), modality=CONTENT))
            versions = pipe._records.versions(C, str(big))
            if str(big) in listed:
                assert len(versions) == 1 and versions[0].record.points == stored, trial
                assert listed[str(big)] == stored, trial
                outcomes.add("whole")
            else:
                assert stored == 0, (trial, state.files, deleted)
                assert versions == [], trial
                outcomes.add("gone")
        assert outcomes <= {"whole", "gone"}
    finally:
        pipe.close()


def test_drop_stops_a_running_job_before_dropping(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(12):
        (docs / f"d{i:02d}.md").write_text(long_md(f"topic{i}", 30))
    pipe = Pipeline(offline(tmp_path / "data", ingest={"workers": 0}))
    try:
        pipe.ensure_collection(C)
        job = pipe.submit_path_job(C, [str(docs)], str(tmp_path))
        while pipe.job(job.id).files_done < 1:
            time.sleep(0.05)
        pipe.drop(C)
        while not pipe.job(job.id).final:
            time.sleep(0.05)
        files = pipe.job(job.id).files
        assert any("was dropped" in (f.error or "") for f in files)
        assert C not in pipe.collection_names()
    finally:
        pipe.close()


def test_two_pipelines_write_versions_of_one_source_into_one_store(tmp_path: Path) -> None:
    """Two pipelines (two API replicas, say) on one Qdrant store, writing different bytes
    under one source name at the same time, round after round: one version is left each
    time, whole, searchable, and listed once."""
    settings = offline(tmp_path / "data", ingest={"workers": 0, "batch_size": 8},
                       store={"backend": "qdrant", "path": ":memory:"})
    a, b = Pipeline(settings), Pipeline(settings)
    b.__dict__["_store"] = a._store          # one store, as on one server
    b.__dict__["_encoders"] = a._encoders    # (and one model load)
    for p in (a, b):
        p.__dict__["_gate"] = NoGate()       # a server: not exclusive
    try:
        a.ensure_collection(C)
        for rnd in range(4):
            files = []
            for who in ("a", "b"):
                d = tmp_path / f"{who}{rnd}"
                d.mkdir()
                (d / "shared.md").write_text(long_md(f"{who}-round{rnd}", 20))
                files.append(d)
            errors: list[BaseException] = []

            def run(p: Pipeline, d: Path, errors: list[BaseException] = errors) -> None:
                # The same source name from two folders: what two replicas receive.
                item = ("shared.md", lambda: (d / "shared.md").read_bytes())
                try:
                    report = p._runner.run(C, [item])
                    assert report.files[0].status in ("added", "replaced"), report.files
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=run, args=(p, d))
                       for p, d in zip((a, b), files, strict=True)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors
            docs = a.documents(C)
            assert [r["source"] for r in docs] == ["shared.md"], rnd
            stored = a._store.count(C, Filter(source="shared.md", modality=CONTENT))
            assert docs[0]["points"] == stored == a.count(C), rnd
            assert len(a._records.versions(C, "shared.md")) == 1
            hit = a.search(C, "procedure step torque gasket", limit=1)[0]
            assert hit.doc_id == docs[0]["doc_id"]
    finally:
        a.close()
