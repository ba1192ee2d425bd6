"""Plain text and Markdown files: one page, decoded carefully."""

from __future__ import annotations

import codecs
from collections.abc import Iterator

from ingest.loaders.base import DocumentReader, LoadedPage, LoadRequest
from rag.errors import FileRejected

# Share of control characters (other than tab, newlines, form feed) above which a
# "text" file is really binary that happened to decode.
MAX_CONTROL_SHARE = 0.01

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v")


def decode_text(name: str, data: bytes) -> str:
    """Text of ``data``: UTF-8 (or UTF-16/32 with a BOM), else cp1252 for legacy files.

    cp1252 decodes almost any byte string, so it is tried only when there are no NUL
    bytes, and the result must still look like text; binary data with a text extension
    is rejected rather than indexed as mojibake.
    """
    text: str | None = None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                raise FileRejected(
                    f"{name}: starts with a {encoding} byte-order mark but is not valid "
                    f"{encoding} ({exc.reason} at byte {exc.start + len(bom)})"
                ) from exc
            break
    if text is None:
        if b"\x00" in data:
            raise FileRejected(f"{name}: contains NUL bytes: this is binary data, not text")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError as exc:
                raise FileRejected(
                    f"{name}: is neither UTF-8 nor Windows-1252 text; save it as UTF-8"
                ) from exc
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    controls = sum(1 for ch in text if (ch < " " or ch == "\x7f") and ch not in _ALLOWED_CONTROLS)
    if "\x00" in text or (text and controls / len(text) > MAX_CONTROL_SHARE):
        raise FileRejected(f"{name}: looks like binary data, not text")
    return text


class TextReader(DocumentReader):
    """A text file is one page of kind ``text``; decoding happens when it is opened."""

    def __init__(self, request: LoadRequest) -> None:
        super().__init__(request)
        self._text = decode_text(request.name, request.data)

    @property
    def page_count(self) -> int:
        return 1

    def _pages(self) -> Iterator[LoadedPage]:
        yield LoadedPage(page=1, kind="text", text=self._text)
