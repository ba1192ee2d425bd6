"""The no-LLM generator: quote the passages of the top hits that best match the question.

It exists so that mmrag answers something useful, with real citations, on a machine with
no model server and no VLM weights (the ``offline`` profile). It never paraphrases: every
quote is copied from a hit, and the answer says up front that no language model wrote
it, so nobody mistakes a quote list for a synthesized answer.

Two rules keep it grounded in what search found:

- **Units, not sentences.** OCR text and tables are lines, not prose: a screenshot's
  ``--max-conn 500`` line or a table row is quoted whole and alone, never glued to its
  neighbours into a "sentence" (:func:`split_units`). Prose is still split into sentences.
- **Search rank is a prior.** A unit's word-match score is scaled by
  :func:`rank_prior`, and source [1] (the hit search ranked first) is always quoted when
  any of its units matches the question, or listed as the top result when none does; a
  lower-ranked source is never quoted while the first is dropped.
"""

from __future__ import annotations

import functools
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
from rag.generate.prompt import (
    Source,
    flat_label,
    neutralize,
    normalize_text,
    select_sources,
)
from rag.media import MediaStore
from rag.settings import GeneratorSettings
from rag.timecode import time_range
from rag.types import Answer, Citation, Hit

LABEL = "Extractive answer (no language model configured): "
MODEL_NAME = "extractive"
MAX_QUOTES = 4
MAX_QUOTES_PER_SOURCE = 2
MAX_QUOTE_CHARS = 300
MIN_QUOTE_WORDS = 2
# A quote must score at least this fraction of the best unit's score: a unit that
# shares only "router" with the question is noise next to one that answers it.
MIN_RELATIVE_SCORE = 0.5
# Rank prior: source n's scores are divided by 1 + RANK_DECAY * (n - 1), so source [2]
# needs a 25% better word match than [1] to outrank it, [5] twice as good.
RANK_DECAY = 0.25

_WORD = re.compile(r"\w+", re.UNICODE)
# Sentence ends: ., ! or ? followed by space and something that can start a sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9À-Ý])")
_PARAGRAPH = re.compile(r"\n\s*\n")
_BULLET = re.compile(r"^\s*(?:[-*•▪◦]|\d{1,2}[.)])\s")
_HEADING = re.compile(r"^\s*#{1,6}\s")
# A table row: Markdown pipes, tabs, or cells separated by runs of 2+ spaces.
_TABLE_ROW = re.compile(r"\|.*\||\t|\S {2,}\S")
_TERMINAL = re.compile(r"[.!?:;]['\")\]]?$")


@functools.lru_cache(maxsize=16384)
def terms(text: str) -> frozenset[str]:
    """Content words of ``text``: lowercased, stopwords dropped, plural/verb endings cut
    so "ports" matches "port" and "configured" matches "configure".

    Memoised, as :func:`split_units` is: a chat quotes from the same few hundred chunks
    over and over, and splitting and stemming them again was a third of a chat's
    Python time on a busy server (answers are the same, the work is done once)."""
    out: set[str] = set()
    for word in _WORD.findall(text.lower()):
        if len(word) < 2 or word in STOPWORDS:
            continue
        out.add(_stem(word))
    return frozenset(out)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def rank_prior(index: int) -> float:
    """Weight of source ``index`` (1-based): 1 for the first, falling slowly."""
    return 1.0 / (1.0 + RANK_DECAY * (max(1, index) - 1))


def is_line_text(hit: Hit) -> bool:
    """Whether ``hit.text`` is OCR lines (a picture, a scanned page, a text chunk of one)
    rather than prose. Text-layer PDF boxes carry confidence 1.0; OCR's are below."""
    if hit.modality in ("image", "page", "frame") and hit.boxes:
        return any(b.confidence < 1.0 for b in hit.boxes) or hit.modality in ("image", "frame")
    return any(b.confidence < 1.0 for b in hit.boxes)


def _is_structural(line: str) -> bool:
    return bool(_BULLET.match(line) or _HEADING.match(line) or _TABLE_ROW.search(line))


def _lines_to_blocks(lines: list[str]) -> list[tuple[str, bool]]:
    """Join hard-wrapped prose lines; keep list items, headings and table rows alone.

    A line continues the previous one when neither is structural and the previous one
    does not end a sentence, or the line starts in lower case (PDF text layers and
    Markdown wrap mid-sentence). Returns (block, is_structural) pairs."""
    blocks: list[tuple[str, bool]] = []
    prev_open = False
    for raw in lines:
        line = normalize_text(raw)
        if not line:
            prev_open = False
            continue
        structural = _is_structural(raw)
        continues = prev_open or line[0].islower()
        if blocks and continues and not structural and not blocks[-1][1]:
            blocks[-1] = (blocks[-1][0] + " " + line, False)
        else:
            blocks.append((line, structural))
        prev_open = not structural and not _TERMINAL.search(line)
    return blocks


_CODEISH = re.compile(r"[=|$<>{}\[\]_/\\#;`]")


def _ocr_blocks(lines: list[str]) -> list[str]:
    """OCR lines as units, except that a line starting in lower case continues the one
    before it when that one ends no sentence: a sentence wrapped over two lines of a
    label or a scan ("Parcel 4471 ships" / "from Rotterdam harbour") is quoted whole.
    Table rows and list items never merge."""
    blocks: list[str] = []
    open_prev = False
    for raw in lines:
        line = normalize_text(raw)
        if not line:
            open_prev = False
            continue
        prose = not _is_structural(raw) and not _CODEISH.search(line)
        if blocks and open_prev and prose and line[0].islower():
            blocks[-1] = blocks[-1] + " " + line
        else:
            blocks.append(line)
            # Only a line that starts a sentence (capital letter, no code or config
            # characters) can be continued: terminal and config lines start in lower
            # case too, and each of those is its own unit.
            open_prev = prose and line[0].isupper()
        open_prev = open_prev and not _TERMINAL.search(line)
    return blocks


def split_units(text: str, lines: bool = False) -> list[str]:
    """The quotable units of a chunk, in order (memoised; see :func:`terms`).

    With ``lines`` (OCR text) every line is a unit (lines on one row were already joined
    by OCR layout, so a table row stays one unit), save wrapped sentences
    (:func:`_ocr_blocks`). Otherwise paragraphs are split into
    blocks (wrapped lines joined; list items, headings and table rows kept alone) and
    blocks into sentences. Over-long units are cut into word-aligned pieces.
    """
    return list(_split_units(text or "", lines))


@functools.lru_cache(maxsize=4096)
def _split_units(text: str, lines: bool) -> tuple[str, ...]:
    raw = text.replace("\r\n", "\n").replace("\r", "\n")
    pieces: list[str] = []
    for para in _PARAGRAPH.split(raw):
        raw_lines = para.split("\n")
        if lines:
            blocks = _ocr_blocks(raw_lines)
        else:
            blocks = []
            for block, structural in _lines_to_blocks(raw_lines):
                blocks.extend([block] if structural else _SENTENCE_END.split(block))
        for block in blocks:
            pieces.extend(_cut(block.strip(), MAX_QUOTE_CHARS))
    return tuple(p for p in pieces if p)


def split_sentences(text: str) -> list[str]:
    """Prose units of ``text`` (see :func:`split_units`)."""
    return split_units(text, lines=False)


def units_of(hit: Hit) -> list[str]:
    """The quotable units of a hit: lines for OCR text, sentences and rows otherwise."""
    return split_units(hit.text, lines=is_line_text(hit))


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
    """A unit picked from source ``index`` at ``position`` within its text."""

    index: int
    position: int
    text: str
    score: float


def score_units(question: str, sources: list[Source]) -> list[Quote]:
    """Every unit that shares a question term, scored, best first.

    A unit scores the sum of the IDF weights (over all candidate units) of the question
    terms it contains, so a rare term like a model number outweighs a common one like
    "use", times :func:`rank_prior` of its source. Ties go to better-ranked sources and
    earlier units.
    """
    wanted = terms(question)
    candidates: list[tuple[int, int, str, frozenset[str]]] = []
    for source in sources:
        for pos, unit in enumerate(units_of(source.hit)):
            if len(_WORD.findall(unit)) < MIN_QUOTE_WORDS:
                continue
            candidates.append((source.index, pos, unit, terms(unit) & wanted))
    if not wanted or not candidates:
        return []
    df: Counter[str] = Counter()
    for *_, matched in candidates:
        df.update(matched)
    n = len(candidates)
    scored = [
        Quote(index, pos, unit,
              rank_prior(index) * sum(math.log(1 + n / df[t]) for t in matched))
        for index, pos, unit, matched in candidates
        if matched
    ]
    scored.sort(key=lambda q: (-q.score, q.index, q.position))
    return scored


def pick_quotes(
    question: str,
    sources: list[Source],
    max_quotes: int = MAX_QUOTES,
    per_source: int = MAX_QUOTES_PER_SOURCE,
) -> list[Quote]:
    """The best supporting units, in source order.

    At most ``per_source`` quotes come from one source so one long chunk cannot crowd
    out the rest; units with no question term, or scoring under
    :data:`MIN_RELATIVE_SCORE` of the best, are not quoted. Source [1]'s best matching
    unit is always among the quotes when it has one, even below that floor: search put
    it first, so a lower-ranked source never speaks while the first stays silent.
    """
    scored = score_units(question, sources)
    if not scored:
        return []
    floor = scored[0].score * MIN_RELATIVE_SCORE
    top = next((q for q in scored if q.index == 1), None)
    picked: list[Quote] = [top] if top is not None else []
    per: Counter[int] = Counter(q.index for q in picked)
    seen = {" ".join(q.text.lower().split()) for q in picked}
    for quote in scored:
        if len(picked) >= max(1, max_quotes):
            break
        key = " ".join(quote.text.lower().split())
        if quote.score < floor:
            break
        if per[quote.index] >= per_source or key in seen:
            continue
        picked.append(quote)
        per[quote.index] += 1
        seen.add(key)
    return sorted(picked, key=lambda q: (q.index, q.position))


def _where(hit: Hit) -> str:
    source = flat_label(hit.source)
    if hit.start is not None:  # a video's frame or a stretch of speech: its time
        return f"{source} at {time_range(hit.start, hit.end)}"
    return f"{source} p.{hit.page}" if hit.page > 0 else source


def _first_unit(sources: list[Source]) -> Quote | None:
    for source in sources:
        for pos, unit in enumerate(units_of(source.hit)):
            return Quote(source.index, pos, unit, 0.0)
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
            fallback = _first_unit(sources)
            quotes = [fallback] if fallback else []
            lines.append(
                LABEL
                + "no passage in the sources matches the question's words"
                + ("; the top-ranked passage is quoted below." if quotes else ".")
            )
        # A quote keeps its words, but not a bracketed number: in the answer that would
        # read as a citation of another source.
        lines += [f'- "{neutralize(q.text)}" [{q.index}]' for q in quotes]

        # The first source is always cited: if it is a picture, it is listed even when
        # other images scored higher.
        visual = choose_visual_sources(sources, s.max_images)
        first = sources[0]
        if first.is_visual and first not in visual:
            visual = [first, *visual[: max(0, s.max_images - 1)]]
        if visual:
            lines.append("Images:")
            for src in visual:
                kind = {"page": "page image", "frame": "video frame"}.get(
                    src.hit.modality, "image")
                lines.append(f"- [{src.index}] {kind}: {_where(src.hit)}")
        if not any(q.index == 1 for q in quotes) and first not in visual:
            lines.append(f"Top search result: [1] {_where(first.hit)}")

        by_index = {src.index: src for src in sources}
        quoted: dict[int, list[str]] = {}
        for q in quotes:
            quoted.setdefault(q.index, []).append(q.text)
        cited = set(quoted) | {src.index for src in visual} | {1}
        citations = [
            make_citation(n, by_index[n].hit, trim(" ".join(quoted[n])) if n in quoted else None)
            for n in sorted(cited)
        ]
        return lines, citations, sources
