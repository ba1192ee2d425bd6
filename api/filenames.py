"""Upload file names as multipart headers carry them (HTTP only); what a name may be
is decided in :mod:`policy.names`, the same for HTTP and MCP uploads.

Header parsing is done on bytes here rather than by ``python_multipart``'s
``parse_options_header``, which re-encodes the header as latin-1 and fails on any other
character (the 500s the fuzzer found). Both spellings clients use are read: the plain
``filename="..."`` (UTF-8, as browsers, httpx, requests and curl send it; ``\\"`` and
``\\\\`` unescaped) and RFC 5987's ``filename*=UTF-8''...`` (older urllib3, some SDKs),
which wins when both are present (RFC 6266).
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from rag.errors import BadInput


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
