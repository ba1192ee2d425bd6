"""The no-LLM generator: labelled, quotes only what the hits say, cites what it quoted."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.generate import Delta, Done
from rag.generate.citations import extract_citations
from rag.generate.extractive import (
    LABEL,
    ExtractiveGenerator,
    pick_quotes,
    rank_prior,
    split_sentences,
    split_units,
)
from rag.generate.prompt import normalize_text, select_sources
from rag.media import MediaStore
from rag.settings import GeneratorSettings
from rag.types import Hit, OcrBox

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
    # One OCR line is one unit: the address line alone, not glued to the next line.
    assert '- "ADMIN: http://192.168.1.1" [2]' in answer.text
    label = next(c for c in answer.citations if c.index == 2)
    assert label.box == (0.12, 0.20, 0.78, 0.31)
    assert label.media == hits[1].media
    # Source [1] matches none of the question's words; it is still named and cited.
    assert "Top search result: [1] docs/guide.pdf p.3" in answer.text
    assert answer.citations[0].index == 1


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


def hit(n: int, text: str, **kw: Any) -> Hit:
    return Hit(id=f"h{n}", score=1 - n / 10, source=f"docs/s{n}.md", page=0,
               modality=kw.pop("modality", "text"), text=text, **kw)


def ocr_hit(n: int, lines: list[str]) -> Hit:
    boxes = [OcrBox(t, (0.1, 0.05 * i, 0.9, 0.05 * i + 0.04), 0.93) for i, t in enumerate(lines)]
    return Hit(id=f"o{n}", score=0.5, source=f"shots/s{n}.png", page=1, modality="image",
               text="\n".join(lines), boxes=boxes, media=f"{'ab' * 32}-p1")


def test_ocr_lines_and_table_rows_are_units() -> None:
    assert split_units("nginx -t\nlimit_req zone=api burst=20\nreload ok", lines=True) == [
        "nginx -t", "limit_req zone=api burst=20", "reload ok"]
    table = ("Limits per plan:\n| plan | requests/min |\n|---|---|\n| free | 60 |\n"
             "| pro | 9,000 to 61,000 |\nOverage is\nbilled monthly.")
    assert split_units(table) == [
        "Limits per plan:", "| plan | requests/min |", "|---|---|", "| free | 60 |",
        "| pro | 9,000 to 61,000 |", "Overage is billed monthly."]
    aligned = "plan   limit\nfree   60\npro    9000"
    assert split_units(aligned) == ["plan limit", "free 60", "pro 9000"]


def test_a_sentence_wrapped_over_ocr_lines_is_one_unit() -> None:
    assert split_units("Parcel 4471 ships\nfrom Rotterdam harbour\nby sea.\nmaxauthtries 3",
                       lines=True) == ["Parcel 4471 ships from Rotterdam harbour by sea.",
                                       "maxauthtries 3"]
    # Config and terminal lines start in lower case too: they never merge.
    assert split_units("Settings\nport = 8080\nhost = db1", lines=True) == [
        "Settings", "port = 8080", "host = db1"]


def test_screenshot_line_is_quoted_alone(media: MediaStore) -> None:
    shot = ocr_hit(1, ["$ sshd -T | grep -i auth", "passwordauthentication no",
                       "pubkeyauthentication yes", "maxauthtries 3"])
    answer = make(media).generate("What is maxauthtries set to?", [shot])
    assert '- "maxauthtries 3" [1]' in answer.text
    assert answer.citations[0].box == shot.boxes[3].box


def test_first_source_is_never_dropped_for_lower_ranked_ones(media: MediaStore) -> None:
    hits = [
        ocr_hit(1, ["Rate limit exceeded: retry after 30 s", "HTTP 429 Too Many Requests"]),
        hit(2, "Rate limits and quotas for the billing API: requests per minute per key."),
        hit(3, "Rate limits for the billing API are raised per key on request, per minute."),
        hit(4, "Billing API keys and rate limits per minute are listed in the console."),
    ]
    answer = make(media).generate("billing API rate limits per minute per key", hits)
    quoted = [int(n) for _, n in QUOTE.findall(answer.text)]
    assert quoted[0] == 1, answer.text
    assert answer.citations[0].index == 1 and answer.citations[0].source == "shots/s1.png"


def test_rank_prior_breaks_equal_matches_towards_search() -> None:
    assert rank_prior(1) == 1.0 > rank_prior(2) > rank_prior(5) > 0
    same = "The backup runs nightly at two."
    quotes = pick_quotes("when does the backup run?",
                         select_sources([hit(1, same + " x"), hit(2, same)], 8, 1000),
                         max_quotes=1)
    assert [q.index for q in quotes] == [1]


words = st.sampled_from(["backup", "port", "limit", "9,000", "rotate", "tls", "cache", "nightly",
                         "the", "is", "set", "to", "retry"])
lines_st = st.lists(st.lists(words, min_size=1, max_size=6).map(" ".join), min_size=1,
                    max_size=4).map("\n".join)


@given(st.lists(st.tuples(lines_st, st.booleans()), min_size=1, max_size=6),
       st.lists(words, min_size=1, max_size=5).map(" ".join))
@settings(max_examples=150, deadline=None)
def test_source_one_is_always_cited(docs: list[tuple[str, bool]], question: str) -> None:
    hits = [ocr_hit(i + 1, text.split("\n")) if is_ocr else hit(i + 1, text)
            for i, (text, is_ocr) in enumerate(docs)]
    answer = ExtractiveGenerator(GeneratorSettings()).generate(question, hits)
    assert answer.citations and answer.citations[0].index == 1
    quoted = {int(n) for _, n in QUOTE.findall(answer.text)}
    assert not quoted or 1 in quoted or "[1]" in answer.text
    assert {c.index for c in answer.citations} == {
        c.index for c in extract_citations(answer.text, select_sources(hits, 8, 12000))}
