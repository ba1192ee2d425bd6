"""Multipart uploads read as a stream, with the limits enforced while bytes arrive.

Why not Starlette's ``request.form()``: it spools every file to disk first and only then
lets us look at sizes, so a client could push gigabytes before being told no. Here the
body is parsed chunk by chunk with ``python_multipart``; the moment one file passes
``api.max_upload_bytes`` or the request carries more than ``api.max_files_per_request``
files, parsing stops with a 413 and nothing has been stored (the job is only created
from a complete, accepted request).

After a rejection the rest of the body is read and thrown away (up to
:data:`DRAIN_BYTES`) before answering: HTTP/1.1 clients write the whole request before
reading the response, and a server that closes mid-upload makes them report a
"connection reset" instead of our 413 and its message.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from rag.errors import BadInput, LimitExceeded, MmragError, UnsupportedFile

FILE_FIELDS = ("files", "file")
METADATA_FIELD = "metadata"
MAX_FIELD_BYTES = 64 * 1024
DRAIN_BYTES = 64 * 1024 * 1024
MAX_NAME_CHARS = 150
MAX_METADATA_KEYS = 64


@dataclass
class UploadedFile:
    filename: str
    data: bytes


@dataclass
class UploadForm:
    files: list[UploadedFile] = field(default_factory=list)
    metadata: str | None = None


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    field_name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


class _Collector:
    """python_multipart callbacks that build the form and stop at the first limit."""

    def __init__(self, max_file_bytes: int, max_files: int) -> None:
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.form = UploadForm()
        self.error: MmragError | None = None
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field.extend(data[start:end])

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value.extend(data[start:end])

    def on_header_end(self) -> None:
        name = self._header_field.decode("latin-1").strip().lower()
        self._part.headers[name] = self._header_value.decode("utf-8", "replace").strip()
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        if self.error:
            return
        disposition = self._part.headers.get("content-disposition", "")
        _, params = parse_options_header(disposition)
        self._part.field_name = params.get(b"name", b"").decode("utf-8", "replace")
        raw = params.get(b"filename")
        self._part.filename = raw.decode("utf-8", "replace") if raw is not None else None
        name = self._part.field_name
        if self._part.filename is not None:
            if name not in FILE_FIELDS:
                self.error = BadInput(
                    f"unexpected file field {name!r}; send files in the 'files' field"
                )
            elif self._part.filename and len(self.form.files) >= self.max_files:
                self.error = LimitExceeded(
                    f"too many files in one request: the limit is {self.max_files} "
                    "(api.max_files_per_request); split the upload"
                )
        elif name != METADATA_FIELD:
            self.error = BadInput(
                f"unexpected form field {name!r}; send files in 'files' and a JSON object "
                "in 'metadata'"
            )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error:
            return
        part = self._part
        part.data.extend(data[start:end])
        if part.filename is not None and len(part.data) > self.max_file_bytes:
            self.error = LimitExceeded(
                f"{_display(part.filename)}: the file is over the {self.max_file_bytes:,} byte "
                "upload limit (api.max_upload_bytes)"
            )
        elif part.filename is None and len(part.data) > MAX_FIELD_BYTES:
            self.error = LimitExceeded(f"the metadata field is over {MAX_FIELD_BYTES:,} bytes")

    def on_part_end(self) -> None:
        if self.error:
            return
        part = self._part
        if part.filename is not None:
            # A browser sends an empty, nameless part for an untouched file input.
            if part.filename or part.data:
                self.form.files.append(UploadedFile(part.filename, bytes(part.data)))
        else:
            self.form.metadata = part.data.decode("utf-8", "replace")
        self._part = _Part()


async def read_upload(
    content_type: str | None,
    stream: AsyncIterator[bytes],
    *,
    max_file_bytes: int,
    max_files: int,
) -> UploadForm:
    """Parse a ``multipart/form-data`` body from ``stream`` within the limits."""
    mime, params = parse_options_header(content_type or "")
    if mime != b"multipart/form-data":
        raise UnsupportedFile(
            "send documents as multipart/form-data with one or more 'files' parts "
            "(curl -F files=@report.pdf)"
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadInput("multipart/form-data without a boundary")
    collector = _Collector(max_file_bytes, max_files)
    try:
        parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
        async for chunk in stream:
            parser.write(chunk)
            if collector.error is not None:
                await _drain(stream)
                raise collector.error
        parser.finalize()
    except FormParserError as exc:
        raise BadInput(f"malformed multipart body ({exc})") from None
    if collector.error is not None:
        raise collector.error
    if not collector.form.files:
        raise BadInput("no files in the request; send them in the 'files' field")
    return collector.form


async def _drain(stream: AsyncIterator[bytes]) -> None:
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > DRAIN_BYTES:
            return


def _display(name: str) -> str:
    return sanitize_filename(name) or "file"


def sanitize_filename(name: str) -> str:
    """A safe base name for an uploaded file, keeping its extension.

    Only the last path component survives (both ``/`` and ``\\`` separate), control and
    odd characters become ``_``, leading dots go (no hidden files, no ``..``), and the
    name is cut to :data:`MAX_NAME_CHARS` without losing the extension, which the loader
    uses to tell Markdown from plain text. Returns ``""`` when nothing usable is left.
    """
    name = unicodedata.normalize("NFC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(c if c.isprintable() else "_" for c in name)
    name = re.sub(r"[^\w.\- ()+,@]", "_", name).strip().lstrip(".").strip()
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: MAX_NAME_CHARS - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_NAME_CHARS]
    return name


def source_names(filenames: list[str], prefix: str = "upload/") -> list[str]:
    """Source names for one request's files: sanitised, unique within the request."""
    out: list[str] = []
    seen: set[str] = set()
    for n, raw in enumerate(filenames, 1):
        base = sanitize_filename(raw) or f"file-{n}"
        candidate, k = base, 2
        while candidate in seen:
            stem, dot, ext = base.rpartition(".")
            candidate = f"{stem}-{k}.{ext}" if dot and stem else f"{base}-{k}"
            k += 1
        seen.add(candidate)
        out.append(prefix + candidate)
    return out


def parse_metadata(raw: str | None) -> dict[str, Any]:
    """The ``metadata`` form field: a flat JSON object of scalars (filterable values)."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadInput(f"metadata must be a JSON object ({exc})") from None
    if not isinstance(value, dict):
        raise BadInput("metadata must be a JSON object, e.g. {\"team\": \"ops\"}")
    if len(value) > MAX_METADATA_KEYS:
        raise BadInput(f"metadata has {len(value)} keys; the limit is {MAX_METADATA_KEYS}")
    for key, item in value.items():
        if not isinstance(item, str | int | float | bool):
            raise BadInput(
                f"metadata[{key!r}] must be a string, number or boolean so it can be "
                "filtered on"
            )
    return value
