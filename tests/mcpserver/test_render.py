"""Tool results as MCP content, without a server."""

from __future__ import annotations

import base64

from mcp.types import ImageContent, TextContent

from mcpserver import render
from rag.errors import NotFound
from rag.types import Answer, Citation, Hit


def hit(n: int, media: str | None, text: str = "some text") -> Hit:
    return Hit(id=str(n), score=1.0 / n, source=f"docs/f{n}.pdf", page=n, modality="page",
               text=text, doc_id=f"d{n}", media=media)


def test_quote_flattens_and_cuts_at_a_word() -> None:
    assert render.quote("a\n  b\tc") == "> a b c"
    long = render.quote("word " * 200, limit=30)
    assert long.endswith(" …") and len(long) <= 36
    assert render.quote("") == "> (no text: a picture)"


def test_hits_text_numbers_sources_pages_and_scores() -> None:
    text = render.hits_text("kb", "q", [hit(1, None), hit(2, None)])
    assert "[1] docs/f1.pdf, page 1 (page), score 1.000" in text
    assert "[2] docs/f2.pdf, page 2 (page), score 0.500" in text
    assert render.hits_text("kb", "q", []) == "No hits in collection 'kb' for 'q'."


def test_images_dedupe_cap_and_survive_a_missing_one() -> None:
    calls: list[tuple[str, int]] = []

    def media(key: str, side: int) -> bytes:
        calls.append((key, side))
        if key == "gone":
            raise NotFound("media 'gone' does not exist")
        return key.encode()

    hits = [hit(1, "a"), hit(2, "a"), hit(3, None), hit(4, "gone"), hit(5, "b"), hit(6, "c")]
    out = render.hit_images(hits, media, limit=3)
    pictures = [b for b in out if isinstance(b, ImageContent)]
    assert [base64.b64decode(p.data) for p in pictures] == [b"a", b"b"]
    notes = [b.text for b in out if isinstance(b, TextContent)]
    assert notes[0] == "image of [1] docs/f1.pdf, page 1:"
    assert "image unavailable (media 'gone' does not exist)" in notes[1]
    assert calls == [("a", render.THUMB_SIDE), ("gone", render.THUMB_SIDE),
                     ("b", render.THUMB_SIDE)]
    assert render.hit_images(hits, media, limit=0) == []


def test_citation_media_from_the_hit_or_the_url() -> None:
    h = hit(1, "abc-p1")
    c = Citation(index=1, source=h.source, page=1, modality="page", text="", score=1.0,
                 doc_id="d1", chunk=0)
    answer = Answer(text="x [1]", citations=[c], hits=[h])
    assert render.citation_media(answer, c) == "abc-p1"
    own = Citation(index=2, source="s", page=2, modality="image", text="", score=1.0,
                   doc_id="zz", media="ff00ff00-p2")
    assert render.citation_media(answer, own) == "ff00ff00-p2"
    orphan = Citation(index=3, source="s", page=3, modality="text", text="", score=1.0,
                      doc_id="yy")
    assert render.citation_media(answer, orphan) is None
    text = render.answer_text(Answer(text="x [1]", citations=[
        Citation(index=1, source="a.png", page=1, modality="image", text="hello", score=1.0,
                 box=(0.1, 0.2, 0.3, 0.4))]))
    assert "[1] a.png, page 1 (image), region x0,y0,x1,y1 = 0.10, 0.20, 0.30, 0.40" in text
