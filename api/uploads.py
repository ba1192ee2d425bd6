"""Multipart uploads read as a stream, written to a spool on disk as they arrive.

Why not Starlette's ``request.form()``: it reads the whole body before we can look at
it, so a client could push gigabytes before being told no. Here the body is parsed
chunk by chunk with ``python_multipart`` (in the thread pool, which also does the disk
writes) and each file part goes straight into ``<spool>/00000``, ``00001``, ... (the
layout a job's spool uses, so the folder is handed to the job as it is). Memory per
upload is one chunk, whatever the file size. The moment a file passes
``api.max_upload_bytes``, the request carries more than ``api.max_files_per_request``
files, a name cannot be kept (:mod:`policy.names`) or ``on_chunk`` refuses more bytes
(the server-wide in-flight cap), parsing stops with an error; the caller removes the
spool, so a refused upload stores nothing.

After a rejection the rest of the body is read and thrown away (up to
:data:`DRAIN_BYTES`) before answering: HTTP/1.1 clients write the whole request before
reading the response, and a server that closes mid-upload makes them report a
"connection reset" instead of our error and its message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from api.filenames import field_name, file_name, parse_disposition
from policy.names import clean_name
from rag.errors import BadInput, LimitExceeded, MmragError, UnsupportedFile, one_line

FILE_FIELDS = ("files", "file")
METADATA_FIELD = "metadata"
MAX_FIELD_BYTES = 64 * 1024
DRAIN_BYTES = 64 * 1024 * 1024
MAX_METADATA_KEYS = 64
_HOW = "send files as 'files' parts with a filename (curl -F files=@report.pdf)"


@dataclass
class SpooledFile:
    """One received file: the name the client sent, and where its bytes are."""

    filename: str
    path: Path
    size: int


@dataclass
class UploadForm:
    spool: Path
    files: list[SpooledFile] = field(default_factory=list)
    metadata: str | None = None


@dataclass
class _Part:
    headers: dict[str, bytes] = field(default_factory=dict)
    field_name: str = ""
    filename: str | None = None
    out: IO[bytes] | None = None
    path: Path | None = None
    size: int = 0
    data: bytearray = field(default_factory=bytearray)


class _Collector:
    """python_multipart callbacks that spool the files and stop at the first problem."""

    def __init__(self, spool: Path, max_file_bytes: int, max_files: int) -> None:
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.form = UploadForm(spool)
        self.error: MmragError | None = None
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._names: set[str] = set()

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
        # Header names are ASCII by the grammar; latin-1 decodes any byte, never fails.
        name = self._header_field.decode("latin-1").strip().lower()
        self._part.headers[name] = bytes(self._header_value).strip()
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        if self.error:
            return
        try:
            self._begin(self._part)
        except MmragError as exc:
            self.error = exc

    def _begin(self, part: _Part) -> None:
        _, params = parse_disposition(part.headers.get("content-disposition", b""))
        part.field_name = name = field_name(params)
        part.filename = file_name(params, name)
        if part.filename is None:
            if name in FILE_FIELDS:
                raise BadInput(f"file part {name!r} has no filename; {_HOW}")
            if name != METADATA_FIELD:
                raise BadInput(f"unexpected form field {name!r}; {_HOW} and a JSON object "
                               "in 'metadata'")
            return
        if name not in FILE_FIELDS:
            raise BadInput(f"unexpected file field {name!r}; {_HOW}")
        if not part.filename:
            return  # a browser's untouched file input: kept only if it has bytes
        self._check_name(part.filename)

    def _check_name(self, filename: str) -> None:
        if len(self.form.files) >= self.max_files:
            raise LimitExceeded(
                f"too many files in one request: the limit is {self.max_files} "
                "(api.max_files_per_request); split the upload"
            )
        name = clean_name(filename)  # refused before any of its bytes are stored
        if name in self._names:
            raise BadInput(f"two files in this request are both named {name!r} (after Unicode "
                           "normalisation); the second would replace the first")
        self._names.add(name)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error:
            return
        part = self._part
        if part.filename is None:
            part.data.extend(data[start:end])
            if len(part.data) > MAX_FIELD_BYTES:
                self.error = LimitExceeded(f"the metadata field is over {MAX_FIELD_BYTES:,} "
                                           "bytes")
            return
        part.size += end - start
        if part.size > self.max_file_bytes:
            self.error = LimitExceeded(
                f"{part.filename[:200]!r}: the file is over the {self.max_file_bytes:,} byte "
                "upload limit (api.max_upload_bytes)"
            )
            return
        if part.out is None and not part.filename:
            self.error = BadInput(f"file part {part.field_name!r} has an empty filename; {_HOW}")
            return
        try:
            if part.out is None:
                part.path = self.form.spool / f"{len(self.form.files):05d}"
                part.out = part.path.open("xb")
            part.out.write(data[start:end])
        except OSError as exc:
            self.error = MmragError(f"cannot spool the upload to disk: {one_line(exc)}")

    def on_part_end(self) -> None:
        part = self._part
        if part.out is not None:
            part.out.close()
        if self.error:
            return
        if part.filename is None:
            self.form.metadata = part.data.decode("utf-8", "replace")
        elif part.filename:
            path = part.path
            if path is None:  # an empty file: no data callback ran
                path = self.form.spool / f"{len(self.form.files):05d}"
                path.touch(exist_ok=False)
            self.form.files.append(SpooledFile(part.filename, path, part.size))
        self._part = _Part()

    def close(self) -> None:
        if self._part.out is not None:
            self._part.out.close()


async def read_upload(
    content_type: str | None,
    stream: AsyncIterator[bytes],
    spool: Path,
    *,
    max_file_bytes: int,
    max_files: int,
    on_chunk: Callable[[int], None] | None = None,
) -> UploadForm:
    """Parse a ``multipart/form-data`` body from ``stream`` into the empty folder
    ``spool``, within the limits; ``on_chunk(n)`` sees each chunk's size first and may
    raise to stop (the in-flight cap). On error the spool holds partial files: the
    caller removes it."""
    mime, params = parse_options_header(content_type or "")
    if mime != b"multipart/form-data":
        raise UnsupportedFile(f"send documents as multipart/form-data; {_HOW}")
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadInput("multipart/form-data without a boundary")
    collector = _Collector(spool, max_file_bytes, max_files)
    try:
        parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
        async for chunk in stream:
            if on_chunk is not None:
                on_chunk(len(chunk))
            await run_in_threadpool(parser.write, chunk)
            if collector.error is not None:
                raise collector.error
        parser.finalize()
    except FormParserError as exc:
        await drain(stream)
        raise BadInput(f"malformed multipart body ({exc})") from None
    except MmragError:
        await drain(stream)
        raise
    finally:
        collector.close()
    if collector.error is not None:
        raise collector.error
    if not collector.form.files:
        raise BadInput(f"no files in the request; {_HOW}")
    return collector.form


async def drain(stream: AsyncIterator[bytes]) -> None:
    """Read and drop what is left of a refused body, up to :data:`DRAIN_BYTES`."""
    seen = 0
    try:
        async for chunk in stream:
            seen += len(chunk)
            if seen > DRAIN_BYTES:
                return
    except Exception:  # already consumed, or the client went away: nothing to drain
        return


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
