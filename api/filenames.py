"""Upload file names: read from the multipart headers, turned into source names.

A stored document is known by its source name, so the mapping from what a client sent
to ``upload/<name>`` must never merge two different names: ``café.txt`` and
``cafè.txt``, ``q1/report.txt`` and ``q2/report.txt`` are four documents. The rule is
*keep or refuse*, never rewrite:

- the name is kept as sent, Unicode and relative folders included, after one
  normalisation (NFC), because NFC-equal names are the same name typed two ways
  (``é`` as one code point or as ``e`` plus a combining accent);
- a name that cannot be kept safely is refused with a 400 that says why: ``..``,
  absolute paths and drive letters, backslashes (a Windows path, or an attempt to
  smuggle one), empty or ``.`` folder segments, control and bidirectional-override
  characters, bytes that are not UTF-8, names over :data:`MAX_NAME_CHARS`;
- two files with the same name in one request are refused too (the second would
  silently replace the first).

Header parsing is done on bytes here rather than by ``python_multipart``'s
``parse_options_header``, which re-encodes the header as latin-1 and fails on any other
character (the 500s the fuzzer found). Both spellings clients use are read: the plain
``filename="..."`` (UTF-8, as browsers, httpx, requests and curl send it; ``\\"`` and
``\\\\`` unescaped) and RFC 5987's ``filename*=UTF-8''...`` (older urllib3, some SDKs),
which wins when both are present (RFC 6266).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote_to_bytes

from rag.errors import BadInput

PREFIX = "upload/"
MAX_NAME_CHARS = 512
MAX_SEGMENT_CHARS = 255
MAX_DEPTH = 16

# Bidirectional controls reorder what a reader sees ("invoice\u202etxt.exe" shows as
# "invoiceexe.txt"); they have no place in a file name.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_DRIVE = re.compile(r"^[A-Za-z]:")


def parse_disposition(raw: bytes) -> tuple[str, dict[str, bytes]]:
    """``Content-Disposition`` as (disposition type, {lower-case param: raw value}).

    Quoted values have ``\\"`` and ``\\\\`` unescaped and nothing else (a browser
    sends a backslash in a name unescaped); the first of repeated parameters wins.
    """
    params: dict[str, bytes] = {}
    pos, n = 0, len(raw)
    end = raw.find(b";")
    kind = (raw if end < 0 else raw[:end]).strip().decode("latin-1").lower()
    pos = n if end < 0 else end + 1
    while pos < n:
        while pos < n and raw[pos : pos + 1] in (b" ", b"\t", b";"):
            pos += 1
        eq = raw.find(b"=", pos)
        semi = raw.find(b";", pos)
        if eq < 0 or (0 <= semi < eq):
            pos = n if semi < 0 else semi + 1  # a bare token: ignored
            continue
        key = raw[pos:eq].strip().decode("latin-1").lower()
        pos = eq + 1
        while pos < n and raw[pos : pos + 1] in (b" ", b"\t"):
            pos += 1
        if raw[pos : pos + 1] == b'"':
            value = bytearray()
            pos += 1
            while pos < n:
                c = raw[pos : pos + 1]
                if c == b"\\" and raw[pos + 1 : pos + 2] in (b'"', b"\\"):
                    value += raw[pos + 1 : pos + 2]
                    pos += 2
                    continue
                if c == b'"':
                    pos += 1
                    break
                value += c
                pos += 1
            else:
                raise BadInput("malformed Content-Disposition in a multipart part "
                               "(unterminated quoted value)")
            params.setdefault(key, bytes(value))
        else:
            semi = raw.find(b";", pos)
            stop = n if semi < 0 else semi
            params.setdefault(key, raw[pos:stop].strip())
            pos = stop
    return kind, params


def field_name(params: dict[str, bytes]) -> str:
    try:
        return params.get("name", b"").decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("a multipart part has a field name that is not valid UTF-8") from None


def file_name(params: dict[str, bytes], field: str) -> str | None:
    """The part's file name as text, or None when it has no filename parameter."""
    if "filename*" in params:
        return _ext_value(params["filename*"], field)
    raw = params.get("filename")
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(
            f"file part {field!r}: the file name {raw!r} is not valid UTF-8; send names "
            "as UTF-8 (or as filename*=UTF-8''...)"
        ) from None


def _ext_value(raw: bytes, field: str) -> str:
    """RFC 5987 ``charset'language'percent-encoded``."""
    try:
        charset, _, rest = raw.decode("ascii").split("'", 2)
        encoding = {"utf-8": "utf-8", "iso-8859-1": "latin-1"}[charset.strip().lower()]
        return unquote_to_bytes(rest).decode(encoding)
    except (ValueError, KeyError, UnicodeError):
        raise BadInput(
            f"file part {field!r}: malformed filename* {raw[:80]!r}; expected "
            "UTF-8''percent-encoded-name"
        ) from None


def clean_name(raw: str) -> str:
    """The name a file is stored under (without :data:`PREFIX`), or a BadInput saying
    why ``raw`` cannot be kept. Only NFC normalisation changes a name."""
    name = unicodedata.normalize("NFC", raw)
    shown = f"file name {name[:200]!r}"
    if not name:
        raise BadInput("a file has an empty name; every file needs a name")
    for c in name:
        if unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI:
            raise BadInput(f"{shown} contains the control character U+{ord(c):04X}")
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
