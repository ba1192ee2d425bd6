"""Embedding text: the file-name header and the document lead."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ingest.points import (
    document_lead,
    document_leads,
    embedding_text,
    lead_chunk,
    title_words,
)
from rag.payload import LEAD_CHUNK
from rag.types import Chunk

words = st.lists(st.text(alphabet="abcdefghij-=", min_size=1, max_size=12), max_size=40)


@given(words, st.integers(0, 300))
def test_lead_is_a_bounded_prefix_of_the_collapsed_text(ws: list[str], n: int) -> None:
    text = "\n  ".join(ws)
    lead = document_lead(text, n)
    flat = " ".join(text.split())
    assert len(lead) <= max(n, 0)
    assert flat.startswith(lead)
    if n >= len(flat):
        assert lead == flat
    if lead and len(lead) < len(flat):  # cut at a word, or hard at n in one long word
        assert flat[len(lead)] == " " or len(lead) == n


def test_lead_cuts_on_a_word() -> None:
    assert document_lead("GZIP(1)   General Commands\n\nNAME\n gzip - compress", 20) == (
        "GZIP(1) General"
    )
    assert document_lead("anything", 0) == ""


def _chunk(text: str, chunk: int = 3) -> Chunk:
    return Chunk(doc_id="d", source="x/screenshot-017.png", mime="image/png",
                 modality="text", page=1, chunk=chunk, text=text, title="screenshot-017.png")


def test_embedding_text_carries_title_and_lead_unless_the_chunk_starts_with_it() -> None:
    lead = "user@build-06: ~ - man sort SORT(1) User Commands"
    deep = embedding_text(_chunk("-h, --human-numeric-sort  compare 2K 1G"), True, lead)
    assert deep.splitlines()[:2] == [title_words("screenshot-017.png"), lead]
    first = embedding_text(_chunk(lead + "\nNAME sort - sort lines", 0), True, lead)
    assert first.count("man sort") == 1
    assert embedding_text(_chunk("body"), False, "") == "body"
    assert embedding_text(_chunk("   "), True, lead) == ""


def test_document_leads_come_from_each_documents_earliest_chunk() -> None:
    def c(doc: str, page: int, chunk: int, text: str) -> Chunk:
        return Chunk(doc_id=doc, source=f"{doc}.png", mime="image/png", modality="text",
                     page=page, chunk=chunk, text=text, title=f"{doc}.png")

    chunks = [c("a", 1, 1, "later text"), c("a", 1, -1, "man sort SORT(1) all of it"),
              c("b", 2, 0, "page two"), c("b", 1, 0, "  "), c("b", 1, 1, "page one")]
    assert document_leads(chunks, 16) == {"a": "man sort SORT(1)", "b": "page one"}
    assert document_leads(chunks, 0) == {}


def test_lead_chunk_is_the_opening_alone_on_its_page_with_its_media() -> None:
    def c(page: int, chunk: int, text: str) -> Chunk:
        return Chunk(doc_id="d", source="docs/paste.pdf", mime="application/pdf",
                     modality="text", page=page, chunk=chunk, text=text, title="paste.pdf",
                     media=f"d-p{page}", metadata={"team": "ops"}, tenant="t1")

    chunks = [c(2, 0, "second page"), c(1, 1, "later on page one"),
              c(1, 0, "PASTE(1)  User Commands\n NAME paste - merge lines of files")]
    lead = lead_chunk(chunks, 30)
    assert lead is not None
    assert (lead.chunk, lead.page, lead.media, lead.modality) == (LEAD_CHUNK, 1, "d-p1", "text")
    assert lead.text == "PASTE(1) User Commands NAME"
    assert (lead.doc_id, lead.source, lead.title) == ("d", "docs/paste.pdf", "paste.pdf")
    assert (lead.metadata, lead.tenant) == ({"team": "ops"}, "t1")
    assert lead_chunk(chunks, 0) is None
    assert lead_chunk([c(1, -1, "   ")], 30) is None


def test_a_lead_point_is_not_its_documents_opening() -> None:
    """With both ``chunking.lead_chars`` and ``text.context_chars`` on, the context lead
    still comes from the document's first chunk, not from the shorter lead point."""
    body = _chunk("PASTE(1) User Commands NAME paste - merge lines of files", 0)
    lead = lead_chunk([body], 8)
    assert lead is not None and lead.text == "PASTE(1)"
    assert document_leads([body, lead], 40) == {"d": "PASTE(1) User Commands NAME paste -"}
    assert lead_chunk([body, lead], 8) == lead
