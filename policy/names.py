"""Upload names: what a client called a file, turned into the source name it is stored
under (``upload/<name>``), the same for HTTP multipart uploads and MCP uploads.

A stored document is known by its source name, so the mapping from what a client sent
to ``upload/<name>`` must never merge two different names: ``café.txt`` and
``cafè.txt``, ``q1/report.txt`` and ``q2/report.txt`` are four documents. The rule is
*keep or refuse*, never rewrite:

- the name is kept as sent, Unicode and relative folders included, after one
  normalisation (NFC), because NFC-equal names are the same name typed two ways
  (``é`` as one code point or as ``e`` plus a combining accent);
- a name that cannot be kept safely is refused with a message that says why: ``..``,
  absolute paths and drive letters, backslashes (a Windows path, or an attempt to
  smuggle one), empty or ``.`` folder segments, names over :data:`MAX_NAME_CHARS`, and
  characters that make a name read as something it is not:

  - control characters, and the line and paragraph separators U+2028/U+2029 (a name
    in a log line, a listing or a prompt would start a new line);
  - invisible characters: every format character (Unicode category Cf: zero-width
    space, joiners, U+2060 word joiner, U+180E, U+FEFF, bidirectional controls that
    reorder what a reader sees, "invoice\\u202etxt.exe" showing as "invoiceexe.txt") and
    the fillers that render as nothing (:data:`INVISIBLE`): ``report\\u200b.pdf`` and
    ``report.pdf`` look the same and are two documents;
  - slash and backslash look-alikes (:data:`SLASH_LIKE`, and anything whose
    compatibility form holds ``/`` or ``\\``): ``q1\\u2215report.txt`` shows as the
    folder ``q1`` holding ``report.txt`` and is not one;
- two files with the same name in one request are refused too (the second would
  silently replace the first).

Variation selectors (U+FE00-FE0F) are kept: emoji need them (``❤️``) and they
change how a visible character looks, not whether there is one.
"""

from __future__ import annotations

import re
import unicodedata

from rag.errors import BadInput

PREFIX = "upload/"
MAX_NAME_CHARS = 512
MAX_SEGMENT_CHARS = 255
MAX_DEPTH = 16

#: Categories refused outright: controls, surrogates, format (invisible) characters,
#: line and paragraph separators.
REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Cf", "Zl", "Zp"})

#: Characters that render as nothing but are not in category Cf.
INVISIBLE = frozenset(
    "\u034f"  # combining grapheme joiner
    "\u115f\u1160\u3164\uffa0"  # Hangul fillers
    "\u17b4\u17b5"  # Khmer inherent vowels
    "\u180b\u180c\u180d\u180f"  # Mongolian free variation selectors
    "\u2800"  # braille pattern blank
)

#: Characters drawn as a slash or backslash (found by shape in the Unicode charts and
#: confusables data); characters whose NFKC form holds one are refused as well.
SLASH_LIKE = frozenset(
    "\u2044"  # fraction slash
    "\u2215"  # division slash
    "\u2571"  # box drawings light diagonal upper right to lower left
    "\u27cb"  # mathematical rising diagonal
    "\u29f8"  # big solidus
    "\uff0f"  # fullwidth solidus
    "\u1735"  # Philippine single punctuation
    "\u2f03"  # Kangxi radical slash
    "\u3033"  # vertical kana repeat mark upper half
    "\u31d3"  # CJK stroke sp
    "\u0337\u0338"  # combining short / long solidus overlay
    "\u2216"  # set minus
    "\u2572"  # box drawings light diagonal upper left to lower right
    "\u27cd"  # mathematical falling diagonal
    "\u29f5"  # reverse solidus operator
    "\u29f9"  # big reverse solidus
    "\ufe68"  # small reverse solidus
    "\uff3c"  # fullwidth reverse solidus
    "\u20e5"  # combining reverse solidus overlay
    "\u29f6\u29f7"  # solidus with overbar, reverse solidus with horizontal stroke
)

# Bidirectional controls (all in Cf): named as such, since they do more than hide.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_DRIVE = re.compile(r"^[A-Za-z]:")


def _why_refused(c: str) -> str | None:
    """What is wrong with one character of a name, or None when it may stay."""
    code = f"U+{ord(c):04X}"
    category = unicodedata.category(c)
    if category in ("Cc", "Cs"):
        return f"the control character {code}"
    if category in ("Zl", "Zp"):
        return f"the line or paragraph separator {code}"
    if c in _BIDI:
        return (f"the bidirectional control character {code} "
                f"({unicodedata.name(c, 'unnamed')}), which reorders what a reader sees")
    if category == "Cf" or c in INVISIBLE:
        return f"the invisible character {code} ({unicodedata.name(c, 'unnamed')})"
    if c in SLASH_LIKE or (c not in "/\\" and any(
            s in unicodedata.normalize("NFKC", c) for s in "/\\")):
        return (f"{code} ({unicodedata.name(c, 'unnamed')}), which looks like a slash or "
                "backslash; use '/' between folders")
    return None


def clean_name(raw: str) -> str:
    """The name a file is stored under (without :data:`PREFIX`), or a BadInput saying
    why ``raw`` cannot be kept. Only NFC normalisation changes a name."""
    name = unicodedata.normalize("NFC", raw)
    # repr() escapes separators and invisibles, so the message shows what was refused.
    shown = f"file name {name[:200]!r}"
    if not name:
        raise BadInput("a file has an empty name; every file needs a name")
    for c in name:
        why = _why_refused(c)
        if why is not None:
            raise BadInput(f"{shown} contains {why}; rename the file")
    if "\\" in name:
        raise BadInput(f"{shown} contains a backslash; use '/' between folders")
    if name.startswith("/") or _DRIVE.match(name):
        raise BadInput(f"{shown} is an absolute path; send a relative name such as "
                       "'q1/report.txt'")
    if len(name) > MAX_NAME_CHARS:
        raise BadInput(f"{shown[:60]}... is {len(name)} characters; the limit is "
                       f"{MAX_NAME_CHARS}")
    segments = name.split("/")
    if len(segments) > MAX_DEPTH:
        raise BadInput(f"{shown} is {len(segments)} folders deep; the limit is {MAX_DEPTH}")
    for seg in segments:
        if seg == "..":
            raise BadInput(f"{shown} contains '..'; relative folders are kept, but may "
                           "not climb out")
        if seg in ("", ".") or not seg.strip():
            raise BadInput(f"{shown} has an empty, blank or '.' path segment")
        if len(seg) > MAX_SEGMENT_CHARS:
            raise BadInput(f"{shown[:60]}... has a segment over {MAX_SEGMENT_CHARS} "
                           "characters")
    return name


def source_names(filenames: list[str]) -> list[str]:
    """Source names for one request's files, in order; refuses duplicates."""
    seen: dict[str, int] = {}
    out = []
    for i, raw in enumerate(filenames):
        name = clean_name(raw)
        if name in seen:
            raise BadInput(
                f"files {seen[name]} and {i} are both named {name!r} (after Unicode "
                "normalisation); the second would replace the first"
            )
        seen[name] = i
        out.append(PREFIX + name)
    return out
