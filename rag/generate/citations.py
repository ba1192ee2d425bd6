"""From ``[n]`` markers in an answer to :class:`~rag.types.Citation` objects. Pure.

What the model cited becomes a citation, and a number outside the source list is
ignored rather than guessed at. Whatever the model did, source [1], the passage search
ranked first, is always among the citations (:func:`grounded_citations`): a model that
cites only lower-ranked sources, or nothing, would otherwise hide the best evidence from
the reader, and the citation list is where a user checks an answer against the search.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.generate.prompt import Source, normalize_text
from rag.types import Citation, Hit, union_box  # noqa: F401 (union_box re-exported)

CITATION_TEXT_CHARS = 300
# One bracket holding numbers separated by commas/semicolons, with optional ranges:
# [1], [1, 2], [1;3], [2-4], [2–4]. ``[n][m]`` is simply two matches. Digits are capped
# so a stray ``[123456789012]`` in code cannot become a giant integer.
_NUM = r"\d{1,4}(?:\s*[-–]\s*\d{1,4})?"
_BRACKET = re.compile(rf"\[\s*({_NUM}(?:\s*[,;]\s*{_NUM})*)\s*\]")
_ITEM = re.compile(r"(\d{1,4})(?:\s*[-–]\s*(\d{1,4}))?")
# A range longer than this is not a citation ("[1-2000]" in a table is a range of values).
MAX_RANGE = 20


def cited_numbers(text: str, limit: int | None = None) -> list[int]:
    """The source numbers cited in ``text``, in order of first appearance, no repeats.

    With ``limit`` (the number of sources) numbers outside ``1..limit`` are dropped.
    """
    seen: dict[int, None] = {}
    for match in _BRACKET.finditer(text):
        for item in _ITEM.finditer(match.group(1)):
            start = int(item.group(1))
            end = int(item.group(2)) if item.group(2) else start
            if end < start or end - start > MAX_RANGE:
                end = start
            for n in range(start, end + 1):
                if n >= 1 and (limit is None or n <= limit):
                    seen.setdefault(n, None)
    return list(seen)


def trim(text: str, limit: int = CITATION_TEXT_CHARS) -> str:
    """``text`` shortened to about ``limit`` characters at a word boundary, marked with …"""
    text = normalize_text(text)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def _squash(text: str) -> str:
    return " ".join(text.lower().split())


def region_of(hit: Hit, quoted: str | None = None) -> tuple[float, float, float, float] | None:
    """The region of the page/image a citation points at.

    With ``quoted`` text (the extractive backend knows exactly what it quoted) the box
    is the union of the OCR lines that appear in the quote, so the UI can highlight
    just those lines; otherwise, or when no line matches, the union of all the hit's
    boxes (the area the chunk covers).
    """
    if not hit.boxes:
        return None
    if quoted:
        needle = _squash(quoted)
        lines = [
            b for b in hit.boxes
            if (line := _squash(b.text)) and (line in needle or needle in line)
        ]
        if lines:
            return union_box(lines)
    return union_box(hit.boxes)


def make_citation(index: int, hit: Hit, quoted: str | None = None) -> Citation:
    """A citation of ``hit`` as source ``index``; ``quoted`` narrows text and box."""
    return Citation(
        index=index,
        source=hit.source,
        page=hit.page,
        modality=hit.modality,
        text=trim(quoted if quoted else hit.text),
        score=hit.score,
        doc_id=hit.doc_id,
        chunk=hit.chunk,
        box=region_of(hit, quoted),
        media=hit.media,
        start=hit.start,
        end=hit.end,
    )


def extract_citations(text: str, sources: Sequence[Source]) -> list[Citation]:
    """Citations for every in-range ``[n]`` in ``text``, ordered by source number."""
    by_index = {s.index: s for s in sources}
    numbers = cited_numbers(text, limit=max(by_index, default=0))
    return [make_citation(n, by_index[n].hit) for n in sorted(numbers) if n in by_index]


def ensure_top_source(citations: list[Citation], sources: Sequence[Source]) -> list[Citation]:
    """``citations`` with source [1] (search's best hit) added first when it is missing."""
    top = next((s for s in sources if s.index == 1), None)
    if top is None or any(c.index == 1 for c in citations):
        return citations
    return [make_citation(1, top.hit), *citations]


def grounded_citations(text: str, sources: Sequence[Source]) -> list[Citation]:
    """The citations of a model's answer: what it cited, plus source [1] always."""
    return ensure_top_source(extract_citations(text, sources), sources)
