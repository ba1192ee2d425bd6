"""The no-LLM generator: labelled, quotes only what the hits say, cites what it quoted."""

from __future__ import annotations

import re
from typing import Any

from rag.generate import Delta, Done
from rag.generate.citations import extract_citations
from rag.generate.extractive import LABEL, ExtractiveGenerator, pick_quotes, split_sentences
from rag.generate.prompt import normalize_text, select_sources
from rag.media import MediaStore
from rag.settings import GeneratorSettings
from rag.types import Hit

QUOTE = re.compile(r'^- "(.*)" \[(\d+)\]$', re.M)


def make(media: MediaStore, **kw: Any) -> ExtractiveGenerator:
    settings = GeneratorSettings.model_validate({"backend": "extractive", **kw})
    return ExtractiveGenerator(settings, media)


def test_answer_is_labelled_quoted_and_cited(media: MediaStore, hits: list[Hit]) -> None:
    answer = make(media).generate("How many Ethernet ports does the X200 router have?", hits)
    assert answer.text.startswith(LABEL)
    assert answer.extractive and answer.model == "extractive"
    quotes = QUOTE.findall(answer.text)
    assert quotes, answer.text
    for text, n in quotes:
        assert " ".join(text.split()) in " ".join(normalize_text(hits[int(n) - 1].text).split())
    # The best sentence is the one that answers.
    assert ("The X200 router has four gigabit Ethernet ports on the back panel.", "1") in quotes
    # Images are listed with their number, file and page.
    assert "- [2] image: photos/router-label.jpg p.1" in answer.text
    assert "- [4] page image: scans/warranty.pdf p.2" in answer.text
    # Citations are exactly the numbers in the text, and point at the right hits.
    sources = select_sources(hits, 8, 12000)
    assert [c.index for c in answer.citations] == [
        c.index for c in extract_citations(answer.text, sources)
    ]
    assert answer.hits == hits
    first = answer.citations[0]
    assert (first.index, first.source, first.page) == (1, "docs/guide.pdf", 3)
    assert "four gigabit Ethernet ports" in first.text


def test_quoting_an_ocr_line_narrows_the_box(media: MediaStore, hits: list[Hit]) -> None:
    answer = make(media).generate("What is the admin address on the label?", hits)
    assert '"ADMIN: http://192.168.1.1 Default password: printed on card" [2]' in answer.text
    label = next(c for c in answer.citations if c.index == 2)
    assert label.box == (0.12, 0.20, 0.86, 0.46)
    assert label.media == hits[1].media


def test_no_hits(media: MediaStore) -> None:
    answer = make(media).generate("anything?", [])
    assert answer.text.startswith(LABEL) and "no sources" in answer.text
    assert answer.citations == [] and answer.hits == []


def test_no_matching_words_says_so_and_quotes_the_top_passage(
    media: MediaStore, hits: list[Hit]
) -> None:
    answer = make(media).generate("Quelle est la couleur du ciel?", hits)
    assert "no passage in the sources matches" in answer.text
    assert '- "Connecting the X200." [1]' in answer.text


def test_follow_up_is_scored_with_the_earlier_subject(media: MediaStore, hits: list[Hit]) -> None:
    history = [{"role": "user", "content": "How should I update the firmware?"},
               {"role": "assistant", "content": "..."}]
    answer = make(media).generate("and what must I avoid?", hits, history)
    assert "Never switch the router off while the update runs." in answer.text


def test_max_images_limits_the_listing(media: MediaStore, hits: list[Hit]) -> None:
    answer = make(media, max_images=1).generate("ports?", hits)
    assert "[2] image:" in answer.text and "[4] page image" not in answer.text


def test_stream_yields_lines_then_done(media: MediaStore, hits: list[Hit]) -> None:
    gen = make(media)
    events = list(gen.stream("How many Ethernet ports?", hits))
    assert all(isinstance(e, Delta) for e in events[:-1]) and isinstance(events[-1], Done)
    assert len(events) > 3
    text = "".join(e.text for e in events[:-1])  # type: ignore[union-attr]
    assert text == events[-1].answer.text  # type: ignore[union-attr]
    assert text == gen.generate("How many Ethernet ports?", hits).text


def test_sentence_splitting() -> None:
    text = ("First sentence here. Second one!\nwrapped line continues.\n\n"
            "- a bullet item\n- another item\n\n" + "x" * 700)
    pieces = split_sentences(text)
    assert pieces[:4] == ["First sentence here.", "Second one! wrapped line continues.",
                          "- a bullet item", "- another item"]
    assert all(len(p) <= 300 for p in pieces)


def test_pick_quotes_caps_per_source() -> None:
    hit = Hit(id="a", score=1, source="a.txt", page=0, modality="text",
              text="Router one has ports. Router two has ports. Router three has ports.")
    quotes = pick_quotes("router ports", select_sources([hit], 8, 1000), per_source=2)
    assert len(quotes) == 2
