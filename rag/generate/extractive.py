"""The no-LLM generator: quote the sentences of the top hits that best match the question.

It exists so that mmrag answers something useful, with real citations, on a machine with
no model server and no VLM weights (the ``offline`` profile). It never paraphrases: every
quoted sentence is copied from a hit, and the answer says up front that no language
model wrote it, so nobody mistakes a quote list for a synthesized answer.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image

from rag.generate.base import (
    STOPWORDS,
    Delta,
    Done,
    GenerationEvent,
    collect,
    condense_query,
)
from rag.generate.citations import make_citation, trim
from rag.generate.images import choose_visual_sources
from rag.generate.prompt import Source, normalize_text, select_sources
from rag.media import MediaStore
from rag.settings import GeneratorSettings
from rag.types import Answer, Citation, Hit

LABEL = "Extractive answer (no language model configured): "
MODEL_NAME = "extractive"
MAX_QUOTES = 4
MAX_QUOTES_PER_SOURCE = 2
MAX_QUOTE_CHARS = 300
MIN_QUOTE_WORDS = 3
# A quote must score at least this fraction of the best sentence's score: a sentence that
# shares only "router" with the question is noise next to one that answers it.
MIN_RELATIVE_SCORE = 0.5

_WORD = re.compile(r"\w+", re.UNICODE)
# Sentence ends: ., ! or ? followed by space and something that can start a sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9À-Ý])")
_PARAGRAPH = re.compile(r"\n\s*\n")
_BULLET = re.compile(r"\n(?=\s*(?:[-*•▪◦]|\d{1,2}[.)])\s)")


def terms(text: str) -> set[str]:
    """Content words of ``text``: lowercased, stopwords dropped, plural/verb endings cut
    so "ports" matches "port" and "configured" matches "configure"."""
    out: set[str] = set()
    for word in _WORD.findall(text.lower()):
        if len(word) < 2 or word in STOPWORDS:
            continue
        out.add(_stem(word))
    return out


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def split_sentences(text: str) -> list[str]:
    """Sentences of a chunk. Paragraphs and list items split; wrapped lines inside a
    paragraph are joined (PDF text layers hard-wrap mid-sentence). Over-long runs
    without punctuation (OCR, tables) are cut into word-aligned pieces."""
    text = normalize_text(text)
    pieces: list[str] = []
    for block in _PARAGRAPH.split(text):
        for item in _BULLET.split(block):
            flat = " ".join(item.split())
            for sentence in _SENTENCE_END.split(flat):
                pieces.extend(_cut(sentence.strip(), MAX_QUOTE_CHARS))
    return [p for p in pieces if p]


def _cut(text: str, limit: int) -> list[str]:
    out: list[str] = []
    while len(text) > limit:
        space = text.rfind(" ", 0, limit)
        at = space if space > limit // 2 else limit
        out.append(text[:at].strip())
        text = text[at:].strip()
    if text:
        out.append(text)
    return out


@dataclass(frozen=True)
class Quote:
    """A sentence picked from source ``index`` at ``position`` within its text."""

    index: int
    position: int
    text: str
    score: float


def pick_quotes(
    question: str,
    sources: list[Source],
    max_quotes: int = MAX_QUOTES,
    per_source: int = MAX_QUOTES_PER_SOURCE,
) -> list[Quote]:
    """The best supporting sentences, in source order.

    A sentence scores the sum of the IDF weights (over all candidate sentences) of the
    question terms it contains, so a rare term like a model number outweighs a common
    one like "use". Ties go to better-ranked sources and earlier sentences. At most
    ``per_source`` quotes come from one source so one long chunk cannot crowd out the
    rest; sentences with no question term, or scoring under :data:`MIN_RELATIVE_SCORE`
    of the best, are never quoted.
    """
    wanted = terms(question)
    candidates: list[tuple[int, int, str, set[str]]] = []
    for source in sources:
        for pos, sentence in enumerate(split_sentences(source.hit.text)):
            if len(_WORD.findall(sentence)) < MIN_QUOTE_WORDS:
                continue
            candidates.append((source.index, pos, sentence, terms(sentence) & wanted))
    if not wanted or not candidates:
        return []
    df: Counter[str] = Counter()
    for *_, matched in candidates:
        df.update(matched)
    n = len(candidates)
    scored = [
        Quote(index, pos, sentence, sum(math.log(1 + n / df[t]) for t in matched))
        for index, pos, sentence, matched in candidates
        if matched
    ]
    scored.sort(key=lambda q: (-q.score, q.index, q.position))
    floor = scored[0].score * MIN_RELATIVE_SCORE if scored else 0.0
    picked: list[Quote] = []
    per: Counter[int] = Counter()
    seen: set[str] = set()
    for quote in scored:
        key = " ".join(quote.text.lower().split())
        if quote.score < floor:
            break
        if per[quote.index] >= per_source or key in seen:
            continue
        picked.append(quote)
        per[quote.index] += 1
        seen.add(key)
        if len(picked) >= max_quotes:
            break
    return sorted(picked, key=lambda q: (q.index, q.position))


def _where(hit: Hit) -> str:
    return f"{hit.source} p.{hit.page}" if hit.page > 0 else hit.source


def _first_sentence(sources: list[Source]) -> Quote | None:
    for source in sources:
        for pos, sentence in enumerate(split_sentences(source.hit.text)):
            return Quote(source.index, pos, sentence, 0.0)
    return None


class ExtractiveGenerator:
    """Answers by quoting; no model, no network, deterministic."""

    def __init__(
        self,
        settings: GeneratorSettings,
        media: MediaStore | None = None,
        max_quotes: int = MAX_QUOTES,
    ) -> None:
        self.settings = settings
        self.media = media  # unused: images are listed, not looked at
        self.max_quotes = max_quotes

    def load(self) -> None:
        """Nothing to load."""

    def generate(
        self,
        question: str,
        hits: list[Hit],
        history: list[dict[str, Any]] | None = None,
        image: Image.Image | None = None,
    ) -> Answer:
        return collect(self.stream(question, hits, history, image))

    def stream(
        self,
        question: str,
        hits: list[Hit],
        history: list[dict[str, Any]] | None = None,
        image: Image.Image | None = None,
    ) -> Iterator[GenerationEvent]:
        """The answer line by line: label, quotes, listed images; then ``Done``."""
        lines, citations, sources = self._compose(question, hits, history)
        text = ""
        for i, line in enumerate(lines):
            piece = line if i == 0 else "\n" + line
            text += piece
            yield Delta(piece)
        yield Done(
            Answer(
                text=text,
                citations=citations,
                hits=[s.hit for s in sources],
                model=MODEL_NAME,
                extractive=True,
            )
        )

    def _compose(
        self, question: str, hits: list[Hit], history: list[dict[str, Any]] | None
    ) -> tuple[list[str], list[Citation], list[Source]]:
        s = self.settings
        sources = select_sources(hits, s.max_sources, s.max_context_chars)
        if not sources:
            return [LABEL + "no sources were retrieved, so there is nothing to quote."], [], []
        # Follow-ups ("and its port?") are scored with the subject of earlier turns.
        query = condense_query(question, history or [])
        quotes = pick_quotes(query, sources, self.max_quotes)
        lines: list[str] = []
        if quotes:
            lines.append(LABEL + "the passages from your sources that best match the question.")
        else:
            fallback = _first_sentence(sources)
            quotes = [fallback] if fallback else []
            lines.append(
                LABEL
                + "no passage in the sources matches the question's words"
                + ("; the top-ranked passage is quoted below." if quotes else ".")
            )
        lines += [f'- "{q.text}" [{q.index}]' for q in quotes]

        visual = choose_visual_sources(sources, s.max_images)
        if visual:
            lines.append("Images:")
            for src in visual:
                kind = "page image" if src.hit.modality == "page" else "image"
                lines.append(f"- [{src.index}] {kind}: {_where(src.hit)}")

        by_index = {src.index: src for src in sources}
        quoted: dict[int, list[str]] = {}
        for q in quotes:
            quoted.setdefault(q.index, []).append(q.text)
        cited = set(quoted) | {src.index for src in visual}
        citations = [
            make_citation(n, by_index[n].hit, trim(" ".join(quoted[n])) if n in quoted else None)
            for n in sorted(cited)
        ]
        return lines, citations, sources
