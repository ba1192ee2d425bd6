"""End to end through the Pipeline with real components: ingest → Qdrant → fused search.

The example corpus (examples/corpus: Markdown, text, text PDFs, scanned PDFs and pictures
in every supported format) is ingested once per session with the offline profile.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from pipeline import Pipeline
from rag.errors import BadInput, NotFound
from rag.evaluate import evaluate, read_queries
from rag.payload import LEAD_CHUNK
from rag.settings import Settings
from rag.types import Filter
from tests.conftest import EXAMPLES, offline, tiny_clip

pytestmark = pytest.mark.integration

CORPUS = EXAMPLES / "corpus"
QUERIES = EXAMPLES / "queries.jsonl"


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    return ImageFont.truetype(str(path), size) if path.exists() else ImageFont.load_default(size)


def text_image(text: str, size: tuple[int, int] = (900, 160)) -> Image.Image:
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).text((20, 40), text, fill="black", font=font(44))
    return img


@pytest.fixture(scope="session")
def examples_pipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    pipe = Pipeline(offline(tmp_path_factory.mktemp("examples")))
    report = pipe.ingest("examples", [str(CORPUS)])
    assert not report.failed, [f.error for f in report.failed]
    yield pipe
    pipe.close()


@pytest.mark.slow
def test_every_example_file_lands_with_its_type(examples_pipe: Pipeline) -> None:
    docs = {Path(d["source"]).name: d for d in examples_pipe.documents("examples")}
    on_disk = {p.name for p in CORPUS.iterdir() if p.is_file()}
    assert set(docs) == on_disk
    mimes = {d["mime"] for d in docs.values()}
    assert {"application/pdf", "text/markdown", "text/plain", "image/png", "image/jpeg",
            "image/webp", "image/gif", "image/tiff", "image/bmp"} <= mimes


@pytest.mark.slow
def test_eval_set_ranks_the_right_file_first(examples_pipe: Pipeline) -> None:
    queries = read_queries(QUERIES)

    def search(q):  # type: ignore[no-untyped-def]
        image = Image.open(q.image).convert("RGB") if q.image else None
        return [h.source for h in examples_pipe.search("examples", q.query, image, 20)]

    result = evaluate(queries, search)
    print("\n" + result.table())
    assert result.overall.r1 >= 0.85, result.misses
    assert result.overall.r5 >= 0.95, result.misses


@pytest.mark.slow
def test_image_query_finds_the_screenshot_by_its_text(examples_pipe: Pipeline) -> None:
    screenshot = next(q for q in read_queries(QUERIES) if q.image is not None)
    assert screenshot.image is not None
    hits = examples_pipe.search("examples", None, Image.open(screenshot.image), 5)
    assert Path(hits[0].source).name == screenshot.target


@pytest.mark.slow
def test_filters_restrict_modality_and_source_prefix(examples_pipe: Pipeline) -> None:
    hits = examples_pipe.search("examples", "configuration", limit=10,
                                flt=Filter(modality=["image"]))
    assert hits and all(h.modality == "image" for h in hits)
    one = examples_pipe.documents("examples")[0]["source"]
    hits = examples_pipe.search("examples", "configuration", limit=10,
                                flt=Filter(source_prefix=one))
    assert hits and {h.source for h in hits} == {one}
    prefix = str(CORPUS)
    assert all(h.source.startswith(prefix) for h in examples_pipe.search(
        "examples", "error", flt=Filter(source_prefix=prefix)))


@pytest.mark.slow
def test_second_ingest_writes_nothing(examples_pipe: Pipeline) -> None:
    before = examples_pipe.count("examples")
    report = examples_pipe.ingest("examples", [str(CORPUS)])
    assert report.count("unchanged") == len(report.files) and report.points_written == 0
    assert examples_pipe.count("examples") == before


@pytest.fixture
def small(tmp_path: Path) -> Iterator[tuple[Pipeline, Path]]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tides.md").write_text("# Tides\n\nThe moon's gravity raises two tidal bulges.\n")
    (docs / "bread.txt").write_text("Sourdough bread rises because wild yeast ferments flour.\n")
    text_image("Invoice total: 4,250 EUR").save(docs / "invoice.png")
    pipe = Pipeline(offline(tmp_path / "data"))
    yield pipe, docs
    pipe.close()


def test_changed_file_replaces_its_points(small: tuple[Pipeline, Path]) -> None:
    pipe, docs = small
    pipe.ingest("c", [str(docs)])
    source = str(docs / "tides.md")
    old = pipe._store.count("c", Filter(source=source))
    (docs / "tides.md").write_text("# Tides\n\n" + "Spring tides follow new and full moons. " * 60)
    report = pipe.ingest("c", [str(docs)])
    assert [f.status for f in report.files if f.source == source] == ["replaced"]
    stored = list(pipe._store.scroll("c", Filter(source=source)))
    assert len(stored) > old and len({h.doc_id for h in stored}) == 1
    assert all("bulges" not in h.text for h in stored)
    assert pipe.search("c", "spring tides new moon", limit=1)[0].source == source


def test_lead_points_add_one_summary_point_per_document(tmp_path: Path) -> None:
    """``chunking.lead_chars``: each document gets one more text point holding only its
    opening; it is stored once (re-ingest writes nothing), searchable, and deleted with
    its document."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "paste.md").write_text("PASTE(1)\n\nNAME\n paste - merge lines of files\n\n"
                                   + "The delimiter list is used circularly. " * 80)
    (docs / "bread.txt").write_text("Sourdough bread rises because wild yeast ferments flour.\n")
    plain = Pipeline(offline(tmp_path / "plain"))
    plain.ingest("c", [str(docs)])
    pipe = Pipeline(offline(tmp_path / "data", chunking={"lead_chars": 60}))
    report = pipe.ingest("c", [str(docs)])
    assert not report.failed
    assert pipe.count("c") == plain.count("c") + 2
    plain.close()
    source = str(docs / "paste.md")
    leads = [h for h in pipe._store.scroll("c", Filter(source=source)) if h.chunk == LEAD_CHUNK]
    assert [(h.text, h.page, h.modality) for h in leads] == [
        ("PASTE(1) NAME paste - merge lines of files", 1, "text")]
    hits = pipe.search("c", "merge lines of files", limit=5)
    assert hits[0].source == source
    assert pipe.ingest("c", [str(docs)]).points_written == 0
    pipe.delete_source("c", source)
    assert not list(pipe._store.scroll("c", Filter(source=source)))
    pipe.close()


def test_duplicate_bytes_under_another_name_are_not_stored_twice(
    small: tuple[Pipeline, Path],
) -> None:
    pipe, docs = small
    pipe.ingest("c", [str(docs)])
    count = pipe.count("c")
    shutil.copy(docs / "bread.txt", docs / "bread-copy.txt")
    report = pipe.ingest("c", [str(docs / "bread-copy.txt")])
    assert report.files[0].status == "duplicate" and "bread.txt" in (report.files[0].error or "")
    assert pipe.count("c") == count


def test_delete_removes_a_source_and_only_it(small: tuple[Pipeline, Path]) -> None:
    pipe, docs = small
    pipe.ingest("c", [str(docs)])
    n_before = pipe.count("c")
    source = str(docs / "bread.txt")
    deleted = pipe.delete_source("c", source)
    assert deleted >= 1 and pipe.count("c") == n_before - deleted
    assert all(h.source != source for h in pipe.search("c", "sourdough yeast", limit=10))
    with pytest.raises(NotFound, match="bread.txt"):
        pipe.delete_source("c", source)


def test_bad_files_are_reported_by_name_and_the_rest_lands(
    small: tuple[Pipeline, Path],
) -> None:
    pipe, docs = small
    pipe.ingest("c", [str(docs / "tides.md")])
    before = pipe.count("c")
    bad = docs / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 10)
    png = (docs / "invoice.png").read_bytes()
    (bad / "truncated.png").write_bytes(png[: len(png) // 3])
    (bad / "fake.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<>> broken")
    (bad / "binary.md").write_bytes(bytes(range(256)) * 4)
    (bad / "archive.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    (bad / "good.md").write_text("# Glaciers\n\nGlaciers carve U-shaped valleys.\n")
    report = pipe.ingest("c", [str(bad)])
    status = {Path(f.source).name: f for f in report.files}
    assert status["good.md"].status == "added"
    for name in ("empty.txt", "corrupt.png", "truncated.png", "fake.pdf", "binary.md",
                 "archive.zip"):
        assert status[name].status == "failed", name
        assert name in (status[name].error or ""), status[name].error
    assert pipe.count("c") == before + status["good.md"].points
    assert pipe.search("c", "glacier valleys", limit=1)[0].source.endswith("good.md")


def test_picture_text_is_searchable_with_its_ocr_box(small: tuple[Pipeline, Path]) -> None:
    pipe, docs = small
    pipe.ingest("c", [str(docs)])
    hit = pipe.search("c", "invoice total in euros", limit=1)[0]
    assert hit.source.endswith("invoice.png") and hit.modality == "image"
    assert "4,250" in hit.text or "4250" in hit.text.replace(",", "")
    assert hit.boxes and all(0.0 <= v <= 1.0 for v in hit.boxes[0].box)
    assert hit.media and pipe._media.exists(hit.media)


@pytest.mark.parametrize("store_pages", [True, False])
def test_text_layer_pdf_hits_carry_boxes_and_a_stored_page(tmp_path: Path,
                                                           store_pages: bool) -> None:
    from tests.ingest.files import text_pdf

    lines = ["Gateway limits", "The reports path allows 20 requests per second.",
             "Bursts of 40 requests are queued."]
    (tmp_path / "gw.pdf").write_bytes(text_pdf([lines]))
    pipe = Pipeline(offline(tmp_path / "data", ingest={"store_page_images": store_pages}))
    try:
        pipe.ingest("c", [str(tmp_path / "gw.pdf")])
        hit = pipe.search("c", "how many requests per second on the reports path", limit=1)[0]
        page_image = pipe.media_bytes(hit.media) if hit.media else None
    finally:
        pipe.close()
    assert hit.source.endswith("gw.pdf") and hit.modality == "text" and hit.page == 1
    assert [b.text for b in hit.boxes] == lines
    assert all(b.confidence == 1.0 and 0 <= b.box[0] < b.box[2] <= 1 for b in hit.boxes)
    if store_pages:
        assert page_image and page_image[:4] == b"RIFF"  # the stored WebP render
    else:
        assert hit.media is None and page_image is None


def test_empty_query_is_a_clear_error(small: tuple[Pipeline, Path]) -> None:
    pipe, docs = small
    pipe.ingest("c", [str(docs)])
    with pytest.raises(BadInput, match="query text, an image"):
        pipe.search("c", "  ")
    with pytest.raises(NotFound):
        pipe.search("nope", "anything")


def test_qdrant_backend_runs_the_same_pipeline(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Kubernetes liveness probes restart stuck containers.")
    (docs / "b.md").write_text("PostgreSQL autovacuum reclaims dead tuples.")
    settings: Settings = offline(tmp_path / "data", store={"backend": "qdrant",
                                                           "path": str(tmp_path / "q")})
    pipe = Pipeline(settings)
    report = pipe.ingest("q", [str(docs)])
    assert report.count("added") == 2
    assert pipe.search("q", "vacuum dead rows in postgres", limit=1)[0].source.endswith("b.md")
    assert pipe.ingest("q", [str(docs)]).points_written == 0
    pipe.close()


def test_clip_path_end_to_end_with_a_tiny_model(tmp_path: Path) -> None:
    """Plumbing and persistence of the CLIP path (a random model: no semantics)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    text_image("Dashboard: CPU 93%").save(docs / "dash.png")
    (docs / "notes.md").write_text("Notes about the dashboard alert thresholds.")
    shutil.copy(next(CORPUS.glob("*.pdf")), docs / "doc.pdf")
    settings = tiny_clip(tmp_path / "data")
    pipe = Pipeline(settings)
    report = pipe.ingest("v", [str(docs)])
    assert not report.failed, report.failed
    assert pipe._store.spec("v").dense == {"clip": 32, "text": 384}
    pages = list(pipe._store.scroll("v", Filter(modality=["page"])))
    assert pages and all(pipe._media.exists(h.media or "") for h in pages)
    hits = pipe.search("v", None, Image.open(docs / "dash.png"), limit=20)
    assert hits and {h.modality for h in hits} >= {"image"}
    count = pipe._store.count("v")
    pipe.close()
    # A new pipeline over the same data dir sees the same collection and writes nothing.
    again = Pipeline(tiny_clip(tmp_path / "data"))
    assert again._store.count("v") == count
    assert again.ingest("v", [str(docs)]).points_written == 0
    again.close()
