"""Citation parsing: which ``[n]`` markers count, and what each citation points at."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.generate.citations import (
    CITATION_TEXT_CHARS,
    cited_numbers,
    extract_citations,
    make_citation,
    region_of,
    trim,
    union_box,
)
from rag.generate.prompt import select_sources
from rag.types import Hit, OcrBox
from tests.rag.generate.conftest import LABEL_BOXES

filler = st.text(alphabet="abc XYZ.,;:!?()\n0123456789", max_size=30)


@st.composite
def marked_answers(draw: st.DrawFn) -> tuple[str, list[int]]:
    """Answer text with markers in every supported form, and the numbers it cites."""
    text, numbers = draw(filler), []
    for _ in range(draw(st.integers(0, 6))):
        group = draw(st.lists(st.integers(1, 30), min_size=1, max_size=3))
        form = draw(st.sampled_from(["comma", "adjacent", "semicolon"]))
        if form == "comma":
            text += "[" + ", ".join(map(str, group)) + "]"
        elif form == "semicolon":
            text += "[" + ";".join(map(str, group)) + "]"
        else:
            text += "".join(f"[{n}]" for n in group)
        numbers += group
        # Filler never contains brackets, so it cannot add markers of its own.
        text += draw(filler)
    return text, numbers


@given(marked_answers(), st.integers(0, 30))
@settings(max_examples=300)
def test_cited_numbers_in_order_unique_and_in_range(
    answer: tuple[str, list[int]], n_sources: int
) -> None:
    text, numbers = answer
    expected = list(dict.fromkeys(n for n in numbers if 1 <= n <= n_sources))
    assert cited_numbers(text, limit=n_sources) == expected


@given(st.text(alphabet="abc XYZ.,;:!?()\n0123456789", max_size=200))
def test_no_brackets_no_citations(text: str) -> None:
    assert cited_numbers(text) == []


def test_marker_forms() -> None:
    text = "Ports [1]. Address [2, 3][4]. Range [5-7]. Junk [0] [x] [12345] [9] arr[ 3 ]."
    assert cited_numbers(text, limit=8) == [1, 2, 3, 4, 5, 6, 7]
    assert cited_numbers("[3-1]", limit=5) == [3]  # a backwards range is just its start
    assert cited_numbers("[1-500]", limit=600) == [1]  # a huge range is not a citation


@given(marked_answers())
@settings(max_examples=200)
def test_citations_map_to_the_numbered_hits(answer: tuple[str, list[int]]) -> None:
    hits = [
        Hit(id=f"h{i}", score=1 - i / 10, source=f"docs/f{i}.pdf", page=i + 1,
            modality="text", text=f"chunk {i}")
        for i in range(5)
    ]
    sources = select_sources(hits, 5, 10_000)
    text, numbers = answer
    citations = extract_citations(text, sources)
    assert [c.index for c in citations] == sorted({n for n in numbers if n <= 5})
    for c in citations:
        hit = hits[c.index - 1]
        assert (c.source, c.page, c.text) == (hit.source, hit.page, hit.text)


def test_citations_from_realistic_hits(hits: list[Hit]) -> None:
    sources = select_sources(hits, 8, 12000)
    answer = (
        "The X200 has four gigabit ports [1]. Its admin page is http://192.168.1.1 [2]. "
        "See also [9]."
    )
    first, second = extract_citations(answer, sources)
    assert (first.index, first.source, first.page, first.modality) == (
        1, "docs/guide.pdf", 3, "text")
    assert first.box is None and first.media is None
    assert first.doc_id == hits[0].doc_id and first.chunk == 2 and first.score == 0.91
    assert (second.index, second.source, second.modality) == (2, "photos/router-label.jpg",
                                                              "image")
    assert second.box == (0.12, 0.20, 0.86, 0.46)  # union of both OCR lines
    assert second.media == hits[1].media
    assert second.text == "ADMIN: http://192.168.1.1\nDefault password: printed on card"


def test_no_markers_no_citations(hits: list[Hit]) -> None:
    sources = select_sources(hits, 8, 12000)
    assert extract_citations("The router has four ports.", sources) == []
    assert extract_citations("[1] [2]", []) == []


def test_citation_text_is_trimmed() -> None:
    long = "word " * 200
    trimmed = trim(long)
    assert len(trimmed) <= CITATION_TEXT_CHARS and trimmed.endswith("…")
    hit = Hit(id="x", score=0.5, source="a.txt", page=0, modality="text", text=long)
    assert make_citation(1, hit).text == trimmed


def test_regions() -> None:
    assert union_box([]) is None
    hit = Hit(id="x", score=0.5, source="label.jpg", page=1, modality="image",
              boxes=list(LABEL_BOXES))
    assert region_of(hit) == (0.12, 0.20, 0.86, 0.46)
    # A quote that contains just one OCR line narrows the box to that line.
    assert region_of(hit, "the page says ADMIN: http://192.168.1.1 here") == LABEL_BOXES[0].box
    assert region_of(hit, "nothing matching") == (0.12, 0.20, 0.86, 0.46)
    assert region_of(Hit(id="y", score=0, source="a", page=0, modality="text")) is None


@given(st.lists(st.tuples(*[st.floats(0, 1)] * 4), min_size=1, max_size=8))
def test_union_box_contains_every_box(raw: list[tuple[float, float, float, float]]) -> None:
    boxes = [OcrBox("t", (min(a, c), min(b, d), max(a, c), max(b, d)), 1.0)
             for a, b, c, d in raw]
    x0, y0, x1, y1 = union_box(boxes)  # type: ignore[misc]
    for b in boxes:
        assert x0 <= b.box[0] and y0 <= b.box[1] and b.box[2] <= x1 and b.box[3] <= y1
