"""Chunking: split_text properties, box assignment, and the chunks of each page kind."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ingest.chunking import boxes_in, chunk_document, line_spans, split_text
from ingest.loaders import LoadedDocument, LoadedPage
from rag.errors import ConfigError
from rag.media import media_key
from rag.ocr import ocr_text
from rag.settings import ChunkSettings
from rag.types import OcrBox

DOC_ID = "ab" * 32

# Words, spaces, newlines, blank lines and Markdown syntax: the separators the splitter
# cares about, mixed with long unbreakable runs.
text_strategy = st.lists(
    st.one_of(
        st.sampled_from([" ", "  ", "\n", "\n\n", "# ", "\n## ", "```\n", "\n---\n", "\t"]),
        st.text(alphabet="abcdefghij0123456789.,-", min_size=1, max_size=40),
    ),
    max_size=60,
).map("".join)


@st.composite
def size_and_overlap(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(min_value=1, max_value=120))
    overlap = draw(st.integers(min_value=0, max_value=size - 1))
    return size, overlap


@settings(max_examples=800, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(text_strategy, size_and_overlap(), st.booleans())
def test_split_text_properties(text: str, so: tuple[int, int], markdown: bool) -> None:
    size, overlap = so
    pieces = split_text(text, size, overlap, markdown=markdown)
    covered = [False] * len(text)
    previous: tuple[int, int] | None = None
    for start, end, chunk in pieces:
        assert text[start:end] == chunk  # offsets point at the chunk text
        assert 0 < len(chunk) <= size
        assert chunk == chunk.strip()
        for i in range(start, end):
            covered[i] = True
        if previous is not None:
            prev_start, prev_end = previous
            assert start >= prev_start  # in order
            assert prev_end - start <= overlap  # overlap bounded
        previous = (start, end)
    # Every non-whitespace character is in some chunk.
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())
    assert split_text(text, size, overlap, markdown=markdown) == pieces  # deterministic


@given(st.text(alphabet=" \n\t\r", max_size=50), size_and_overlap())
def test_whitespace_only_text_has_no_chunks(text: str, so: tuple[int, int]) -> None:
    assert split_text(text, *so) == []


def test_split_text_prefers_paragraphs_and_markdown_headings() -> None:
    text = "# Title\n\nFirst paragraph here.\n\n## Section\n\nSecond paragraph text."
    chunks = [c for _, _, c in split_text(text, 40, 0, markdown=True)]
    assert any(c.startswith("## Section") for c in chunks)
    assert all(len(c) <= 40 for c in chunks)


def test_repeated_text_gets_the_right_offsets() -> None:
    # LangChain's start_index points at the first occurrence; ours must not go back.
    text = "abc abc abc abc abc abc abc abc"
    pieces = split_text(text, 7, 0)
    starts = [s for s, _, _ in pieces]
    assert starts == sorted(set(starts))
    assert all(text[s:e] == c for s, e, c in pieces)


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_bad_chunk_settings_are_config_errors(size: int, overlap: int) -> None:
    with pytest.raises(ConfigError):
        split_text("some text", size, overlap)


def line(text: str, y: float, x: float = 0.1) -> OcrBox:
    return OcrBox(text, (x, y, x + 0.3, y + 0.04), 0.9)


def ocr_page(lines: list[OcrBox], kind: str = "page") -> LoadedPage:
    return LoadedPage(
        page=2,
        kind=kind,  # type: ignore[arg-type]
        text=ocr_text(lines),
        boxes=lines,
        image=Image.new("RGB", (20, 20), "white"),
        ocr=True,
    )


def test_line_spans_match_ocr_text() -> None:
    lines = [line("alpha beta", 0.1), line("gamma", 0.2), line("delta", 0.2, x=0.6)]
    page = ocr_page(lines)
    assert page.text == "alpha beta\ngamma delta"
    assert [page.text[s:e] for s, e in line_spans(page)] == ["alpha beta", "gamma", "delta"]


def test_line_spans_fall_back_to_search_when_text_differs() -> None:
    lines = [line("alpha", 0.1), line("gamma", 0.2)]
    page = ocr_page(lines)
    page.text = "intro alpha more gamma"
    assert line_spans(page) == [(6, 11), (17, 22)]


def test_boxes_in_keeps_lines_that_overlap_the_span() -> None:
    boxes = [line("a", 0.1), line("b", 0.2), line("c", 0.3)]
    spans = [(0, 5), (6, 10), (11, 15)]
    assert [b.text for b in boxes_in(boxes, spans, 0, 5)] == ["a"]
    assert [b.text for b in boxes_in(boxes, spans, 4, 7)] == ["a", "b"]
    assert [b.text for b in boxes_in(boxes, spans, 5, 6)] == []  # only the newline
    assert [b.text for b in boxes_in(boxes, spans, 0, 100)] == ["a", "b", "c"]


def test_text_chunks_of_an_ocr_page_carry_their_lines() -> None:
    lines = [line(f"line number {i} of the scanned page", 0.05 * i + 0.01) for i in range(12)]
    page = ocr_page(lines)
    doc = LoadedDocument("scan.pdf", "application/pdf", "scan.pdf", [page])
    chunks = chunk_document(
        doc, doc_id=DOC_ID, source="in/scan.pdf", chunking=ChunkSettings(size=80, overlap=0),
        visual_points=False, metadata={"team": "x"}, tenant="t1",
    )
    assert chunks and all(c.modality == "text" for c in chunks)
    assert [c.chunk for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        # Every line quoted in the chunk has its box attached, and only those.
        assert [b.text for b in c.boxes] == [b.text for b in lines if b.text in c.text]
        assert c.media == media_key(DOC_ID, 2)
        assert c.page == 2 and c.title == "scan.pdf" and c.source == "in/scan.pdf"
        assert c.metadata == {"team": "x"} and c.tenant == "t1"
        assert c.image is None
    chunks[0].metadata["team"] = "changed"
    assert chunks[1].metadata == {"team": "x"}  # each chunk owns its metadata


def test_rendered_pdf_page_gets_a_visual_point_only_when_asked() -> None:
    text = "word " * 400
    page = LoadedPage(2, "page", text, [], Image.new("RGB", (10, 10)), False)
    doc = LoadedDocument("a.pdf", "application/pdf", "a.pdf", [page])
    common = dict(doc_id=DOC_ID, source="a.pdf", chunking=ChunkSettings(size=100, overlap=10),
                  metadata={}, tenant=None)
    without = chunk_document(doc, visual_points=False, **common)  # type: ignore[arg-type]
    with_visual = chunk_document(doc, visual_points=True, **common)  # type: ignore[arg-type]
    assert all(c.modality == "text" for c in without)
    visual = [c for c in with_visual if c.modality == "page"]
    assert len(visual) == 1
    assert visual[0].chunk == -1 and visual[0].image is page.image
    assert 0 < len(visual[0].text) <= 100 and text.startswith(visual[0].text)
    assert len(with_visual) == len(without) + 1


def test_unrendered_pdf_page_has_no_visual_point_or_media() -> None:
    page = LoadedPage(1, "page", "plenty of text on this page", [], None, False)
    doc = LoadedDocument("a.pdf", "application/pdf", "a.pdf", [page])
    chunks = chunk_document(doc, doc_id=DOC_ID, source="a.pdf", chunking=ChunkSettings(),
                            visual_points=True, metadata={}, tenant=None)
    assert [(c.modality, c.chunk, c.media) for c in chunks] == [("text", 0, None)]


def test_picture_is_always_one_visual_point() -> None:
    lines = [line("Quarterly revenue", 0.1), line("grew strongly", 0.2)]
    page = ocr_page(lines, kind="image")
    page.page = 1
    doc = LoadedDocument("pic.png", "image/png", "pic.png", [page])
    chunks = chunk_document(doc, doc_id=DOC_ID, source="pic.png", chunking=ChunkSettings(),
                            visual_points=False, metadata={}, tenant=None)
    assert len(chunks) == 1
    (visual,) = chunks
    assert (visual.modality, visual.chunk, visual.page) == ("image", -1, 1)
    assert visual.text == "Quarterly revenue\ngrew strongly"
    assert visual.boxes == lines and visual.image is page.image
    assert visual.media == media_key(DOC_ID, 1)


def test_picture_without_text_is_still_a_visual_point() -> None:
    page = LoadedPage(1, "image", "", [], Image.new("RGB", (4, 4)), False)
    doc = LoadedDocument("p.jpg", "image/jpeg", "p.jpg", [page])
    chunks = chunk_document(doc, doc_id=DOC_ID, source="p.jpg", chunking=ChunkSettings(),
                            visual_points=True, metadata={}, tenant=None)
    assert [(c.modality, c.text) for c in chunks] == [("image", "")]


def test_picture_with_long_text_also_gets_text_chunks() -> None:
    lines = [line(f"screenshot line {i} with some words", 0.02 * i) for i in range(40)]
    page = ocr_page(lines, kind="image")
    doc = LoadedDocument("shot.png", "image/png", "shot.png", [page])
    chunks = chunk_document(doc, doc_id=DOC_ID, source="shot.png",
                            chunking=ChunkSettings(size=200, overlap=20),
                            visual_points=True, metadata={}, tenant=None)
    assert chunks[0].modality == "image" and len(chunks[0].boxes) == 40
    texts = [c for c in chunks if c.modality == "text"]
    assert len(texts) > 1
    assert [c.chunk for c in texts] == list(range(len(texts)))
    assert all(c.boxes and c.media == chunks[0].media for c in texts)


def test_text_file_chunks_have_no_media_and_markdown_is_split_on_headings() -> None:
    md = "# Intro\n\n" + "intro words " * 20 + "\n\n## Usage\n\n" + "usage words " * 20
    doc = LoadedDocument("docs/readme.md", "text/markdown", "readme.md",
                         [LoadedPage(1, "text", md, [], None, False)])
    chunks = chunk_document(doc, doc_id=DOC_ID, source="docs/readme.md",
                            chunking=ChunkSettings(size=300, overlap=0),
                            visual_points=True, metadata={}, tenant=None)
    assert all(c.modality == "text" and c.media is None and c.boxes == [] for c in chunks)
    assert any(c.text.startswith("## Usage") for c in chunks)
    assert all(c.mime == "text/markdown" and c.title == "readme.md" for c in chunks)


def test_whitespace_page_yields_nothing() -> None:
    doc = LoadedDocument("blank.txt", "text/plain", "blank.txt",
                         [LoadedPage(1, "text", " \n\t ", [], None, False)])
    assert chunk_document(doc, doc_id=DOC_ID, source="blank.txt", chunking=ChunkSettings(),
                          visual_points=True, metadata={}, tenant=None) == []


periodic_text = st.builds(
    lambda unit, n, tail: unit * n + tail,
    st.sampled_from(["- ", "ab", "a a ", "| --- |\n", "x\n\n", "# h\n", "abc abc\n"]),
    st.integers(min_value=1, max_value=80),
    st.text(alphabet="ab -\n", max_size=5),
)


@settings(max_examples=300, deadline=None)
@given(periodic_text, size_and_overlap(), st.booleans())
def test_split_text_offsets_on_repetitive_text(
    text: str, so: tuple[int, int], markdown: bool
) -> None:
    size, overlap = so
    pieces = split_text(text, size, overlap, markdown=markdown)
    assert all(text[s:e] == c and len(c) <= size for s, e, c in pieces)
    for (s1, e1, _), (s2, _, _) in zip(pieces, pieces[1:], strict=False):
        assert s2 >= s1 and e1 - s2 <= overlap
    covered = {i for s, e, _ in pieces for i in range(s, e)}
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
