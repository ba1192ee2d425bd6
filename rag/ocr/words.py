"""Word boundaries for OCR lines: the spaces the recogniser saw but did not write.

PP-OCR's recogniser often drops the spaces between words on English text
("tee-readfromstandard inputand"). Its output still shows where they were: the space
symbol scores above noise in the columns between two words, and neighbours across a space
sit further apart than the line's usual character pitch (:mod:`rag.ocr.ctc`). Two steps,
pure functions over the line's text and that evidence:

1. *Strong* evidence (the space symbol scored at least :data:`STRONG_SPACE` between two
   characters) is a space, wherever it is.
2. Every token still glued is offered to a word segmenter (symspellpy and its shipped
   English frequencies, :mod:`rag.ocr.lexicon`), unless it is a dictionary word or a
   protected token (options, paths, URLs, e-mail addresses, identifiers with ``_``,
   dotted names: hostnames, versions, file names; expressions). A split the segmenter
   proposes is kept only where the image shows *weak* evidence of a gap there
   (:func:`is_weak`). So the dictionary proposes and the picture decides: "internalDNS"
   rendered with a space comes apart ("DNS" is not even in the dictionary, the gap is in
   the picture), while the identifier ``camelCase`` or the word "systemctl", printed
   without a gap, stay whole although the segmenter would cut them.

Numbers are split from glued words the same way ("about9,000to61,000queries"), but never
from units or ordinals ("10ms", "5GB", "2nd"); a comma, semicolon, colon or closing
bracket glued to the next word, a bracket opened right after one ("tee[OPTION]") and a
sentence end glued to the next sentence ("missing.Group") get their space when the gap
is there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from rag.ocr.ctc import Gap
from rag.ocr.lexicon import Lexicon

# Space-symbol probability in the gap that counts as a space on its own. On rendered
# samples (benchmarks/ocr_words.py, tuning split) 0.3 or more occurred between letters of
# one word in 0.02% of pairs.
STRONG_SPACE = 0.3
# Weak evidence: enough to confirm a split a segmenter proposes. Together these caught
# 99% of the spaces the recogniser dropped; alone they fire on about 4% of letter pairs
# inside words, which is why they only confirm.
WEAK_SPACE = 0.005
WEAK_PITCH = 1.6
# A camel hump ("camelCase": lower, upper, lower) is how identifiers are written, so a
# split there needs the space symbol itself to score this much, not just a wide gap.
HUMP_SPACE = 0.05

# Letters that follow a number as its unit or ordinal: never split off it.
UNITS = frozenset({
    "b", "k", "m", "g", "t", "kb", "mb", "gb", "tb", "pb", "kib", "mib", "gib", "tib",
    "kbit", "mbit", "gbit", "bit", "bits", "byte", "bytes", "bps", "kbps", "mbps", "gbps",
    "ms", "us", "ns", "ps", "s", "sec", "secs", "min", "mins", "h", "hr", "hrs", "d", "w",
    "y", "x", "px", "pt", "em", "rem", "dpi", "hz", "khz", "mhz", "ghz", "v", "mv", "kv",
    "a", "ma", "kw", "mw", "c", "f", "st", "nd", "rd", "th",
})

# Tokens that are never cut by the segmenter (only strong evidence may split them).
_PROTECTED = re.compile(
    r"""
    ^[-+]{1,2}[A-Za-z0-9]       # options: -r, --output-error, +x
    | [/\\@_=$#{}<>|~`^*&]      # paths, URLs, e-mail, identifiers, expressions
    | ::                        # C++/Rust paths, IPv6
    | [A-Za-z0-9]\.[A-Za-z0-9]  # hostnames, versions, file names, dotted identifiers
    | [A-Za-z][0-9]+[A-Za-z]    # sha256sum, md5sum, base64url, h264parse
    """,
    re.VERBOSE,
)
_LETTERS = re.compile(r"[A-Za-z]+")
# Punctuation after which prose has a space: "FILEs,do" -> "FILEs, do".
_CLAUSE_END = frozenset(",;:!?)]")

# Fullwidth forms the recogniser's Chinese+Latin charset produces for ASCII punctuation
# ("second，and"): mapped one to one, so character positions stay valid.
_HALFWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_HALFWIDTH.update({0x3000: 0x20, 0x3002: 0x2E, 0x3001: 0x2C})


def halfwidth(text: str) -> str:
    """Fullwidth ASCII forms and CJK full stop / comma / space as ASCII, one for one."""
    return text.translate(_HALFWIDTH)


def is_weak(gap: Gap) -> bool:
    """Whether the image shows at least a hint of a space at this gap."""
    return gap.space_prob >= WEAK_SPACE or gap.pitch >= WEAK_PITCH


def is_protected(token: str) -> bool:
    """Tokens whose shape says they are not prose, so no dictionary may cut them."""
    return _PROTECTED.search(token) is not None


def word_splits(text: str, gaps: Sequence[Gap], lexicon: Lexicon) -> list[int]:
    """Positions ``k`` where a space belongs before ``text[k]``, in increasing order.

    ``gaps[i]`` is the evidence between ``text[i]`` and ``text[i + 1]``; a gap list of
    the wrong length (no evidence) splits nothing. Existing spaces are kept as they are.
    """
    if len(gaps) != len(text) - 1 or not text:
        return []

    def joins(k: int) -> bool:  # a boundary between two non-space characters
        return text[k - 1] != " " and text[k] != " "

    strong = {
        k for k in range(1, len(text))
        if joins(k) and gaps[k - 1].space_prob >= STRONG_SPACE
        and not _inside_word(text, k, lexicon)
    }
    weak = {
        k for k in range(1, len(text))
        if joins(k) and is_weak(gaps[k - 1])
        and (not _hump(text, k) or gaps[k - 1].space_prob >= HUMP_SPACE)
    }
    splits = set(strong)
    # Sentence ends glued to the next sentence come apart first, so that the dot does not
    # make the whole run look like a host or file name.
    # Likewise an option glued to what precedes it ("[OPTION]...--reference=RFILE").
    dots = {
        k for k in weak
        if (text[k - 1] == "." and _sentence_dot(text, k - 1, lexicon)) or _option_start(text, k)
    }
    splits |= dots
    for start, end in _tokens(text, strong | dots):
        token = text[start:end]
        if is_protected(token):
            # "help:<https://...>": the URL stays whole, the prose before it does not.
            tail = _protected_tail(token)
            if tail is None:
                continue
            if start + tail in weak:
                splits.add(start + tail)
            token = token[:tail]
        for offset in _proposals(token, lexicon):
            if isinstance(offset, tuple):  # both sides of a hyphen, or neither
                if all(start + o in weak for o in offset):
                    splits.update(start + o for o in offset)
            elif start + offset in weak:
                splits.add(start + offset)
    return sorted(splits)


def apply_splits(text: str, splits: Sequence[int]) -> str:
    """``text`` with a space inserted before each position in ``splits``."""
    out, prev = [], 0
    for k in splits:
        out.append(text[prev:k])
        prev = k
    out.append(text[prev:])
    return " ".join(out)


def words_with_positions(text: str, splits: Sequence[int]) -> list[tuple[str, int, int]]:
    """The words of the repaired line and the ``[first, last]`` positions of their
    characters in the *original* ``text``: each word's box comes from those."""
    return [(text[a:b], a, b - 1) for a, b in _tokens(text, set(splits))]


def _inside_word(text: str, k: int, lexicon: Lexicon) -> bool:
    """Whether ``k`` falls inside a run of letters that is a dictionary word as it
    stands: even a confident gap there ("appe nd") is a misreading, not a space."""
    if not (text[k - 1].isalpha() and text[k].isalpha()):
        return False
    a, b = k - 1, k
    while a > 0 and text[a - 1].isalpha():
        a -= 1
    while b + 1 < len(text) and text[b + 1].isalpha():
        b += 1
    return lexicon.is_word(text[a : b + 1])


def _protected_tail(token: str) -> int | None:
    """Where a bracketed or quoted protected part starts after unprotected text
    ("online help:<https://example.org/>" -> the "<"), or None."""
    for j in range(1, len(token)):
        if token[j] in "<([{'\"" and is_protected(token[j:]):
            return None if is_protected(token[:j]) else j
    return None


def _option_start(text: str, k: int) -> bool:
    """Whether an option starts at ``text[k]`` right after other text: "--" after a
    letter, digit, dot or bracket ("tar--create", "]...--reference"), or "-" and a letter
    after a dot or closing bracket ("]...-f"); never a word's hyphen ("read-only")."""
    if k + 2 >= len(text) or text[k] != "-":
        return False
    before = text[k - 1]
    if text[k + 1] == "-":
        return text[k + 2].isalnum() and (before.isalnum() or before in ".])")
    return text[k + 1].isalpha() and before in ".])"


def _sentence_dot(text: str, i: int, lexicon: Lexicon) -> bool:
    """Whether the dot at ``text[i]`` ends a sentence glued to the next one: a letter
    before it and a capitalised word after it ("missing.Group", "CRC.For"), or a long run
    of letters that is no word on either side ("extension.gunzipalsorecognizes"). Host
    and file names have short or dictionary parts ("example.com", "resolv.conf"); a dot
    split still needs its gap in the image."""
    if i == 0 or i + 2 >= len(text) or not text[i - 1].isalpha():
        return False
    if text[i + 1].isupper() and text[i + 2].islower():
        return True
    after = _LETTERS.match(text, i + 1)
    before = re.search(r"[A-Za-z]+$", text[:i])
    return any(
        m is not None and len(m.group(0)) >= 8 and not lexicon.is_word(m.group(0))
        for m in (before, after)
    )


def _hump(text: str, k: int) -> bool:
    return (
        text[k - 1].islower() and text[k].isupper() and k + 1 < len(text) and text[k + 1].islower()
    )


def _tokens(text: str, cuts: set[int]) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of the runs of ``text`` between spaces and ``cuts``."""
    start = None
    for k, ch in enumerate(text):
        if ch == " " or k in cuts:
            if start is not None and k > start:
                yield start, k
            start = None if ch == " " else k
        elif start is None:
            start = k
    if start is not None and start < len(text):
        yield start, len(text)


def _proposals(token: str, lexicon: Lexicon) -> Iterator[int | tuple[int, ...]]:
    """Where the dictionary and punctuation would put spaces in ``token``."""
    # 1. Glued runs of letters that are not words, cut where the segmenter says.
    pieces: list[tuple[int, int]] = []  # letter pieces after segmentation
    for m in _LETTERS.finditer(token):
        run = m.group(0)
        if len(run) < 2 or lexicon.is_word(run):
            pieces.append((m.start(), m.end()))
            continue
        pos = m.start()
        for piece in lexicon.segment(run):
            if pos > m.start():
                yield pos
            pieces.append((pos, pos + len(piece)))
            pos += len(piece)

    def piece_at(k: int) -> str:
        for a, b in pieces:
            if a <= k < b:
                return token[a:b]
        return ""

    def wordlike(piece: str) -> bool:
        return len(piece) >= 2 and piece.lower() not in UNITS and lexicon.is_word(piece)

    for k in range(1, len(token)):
        before, after = token[k - 1], token[k]
        if after == "-" and before.isalpha() and k + 1 < len(token) and token[k + 1].isalpha():
            # A dash between words, spaced on both sides or not at all ("tee-read").
            yield (k, k + 1)
        elif after in "[(" and (k + 1 >= len(token) or not token[k + 1].isalpha()):
            continue
        elif _glue(before, after, piece_at(k - 1), piece_at(k), wordlike):
            yield k


def _glue(
    before: str, after: str, left: str, right: str, wordlike: Callable[[str], bool]
) -> bool:
    """Whether prose would have a space between ``before`` and ``after`` (characters;
    ``left``/``right``: the letter pieces they belong to): a number glued to a word
    ("about9,000", "9,000to", "2291postmortem"; never a unit, "10ms"), a clause mark
    glued to the next word ("FILEs,do"), or a bracket opened right after a word
    ("tee[OPTION]")."""
    if after in "[(" and (before.isalpha() or before == "."):
        return True  # "tee[OPTION]...[FILE]", not "read(2)" or "a[0]" (see caller)
    if before.isdigit() and after.isalpha():
        return wordlike(right)
    if before.isalpha() and after.isdigit():
        return wordlike(left)
    # A clause mark between words, not inside a list of letters or units ("k,m,g").
    return (
        before in _CLAUSE_END and after.isalpha() and len(right) >= 2
        and (wordlike(left) or wordlike(right))
    )
