"""Multipart headers, streaming to the spool and the in-flight budget stopping a stream,
as units (no server). Name rules and the budgets themselves: tests/policy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.filenames import file_name, parse_disposition
from api.uploads import parse_metadata, read_upload
from policy.uploads import UploadBudget
from rag.errors import BadInput, Busy, LimitExceeded


@pytest.mark.parametrize(
    ("header", "name", "filename"),
    [
        (b'form-data; name="files"; filename="a.txt"', "files", "a.txt"),
        ('form-data; name="files"; filename="отчёт.txt"'.encode(), "files", "отчёт.txt"),
        ('form-data; name="файлы"; filename="日本_😀.txt"'.encode(), "файлы", "日本_😀.txt"),
        (b"form-data; name=files; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt", "files", "日本.txt"),
        (b"form-data; name=\"files\"; filename=\"fallback.txt\"; "
         b"filename*=utf-8''caf%C3%A9.txt", "files", "café.txt"),
        (b"form-data; name=\"files\"; filename*=iso-8859-1''caf%E9.txt", "files", "café.txt"),
        (b'form-data; name="files"; filename="a;b=c.txt"', "files", "a;b=c.txt"),
        (b'form-data; name="files"; filename="say \\"hi\\".txt"', "files", 'say "hi".txt'),
        (b'form-data; name="files"; filename="a\\\\b.txt"', "files", "a\\b.txt"),
        (b'form-data; name="files"; filename="C:\\path\\x.txt"', "files", "C:\\path\\x.txt"),
        (b'form-data; name="metadata"', "metadata", None),
    ],
)
def test_content_disposition(header: bytes, name: str, filename: str | None) -> None:
    kind, params = parse_disposition(header)
    assert kind == "form-data"
    assert params["name"].decode() == name
    assert file_name(params, name) == filename


@pytest.mark.parametrize(
    "header",
    [b'form-data; name="files"; filename="\xff\xfe.txt"',
     b"form-data; name=files; filename*=UTF-8''%FF.txt",
     b"form-data; name=files; filename*=koi8-r''x.txt",
     b'form-data; name="files"; filename="unterminated'],
)
def test_bad_header_names_are_400(header: bytes) -> None:
    with pytest.raises(BadInput):
        _, params = parse_disposition(header)
        file_name(params, "files")


@given(st.binary(max_size=200))
def test_any_disposition_bytes_give_a_name_or_bad_input(raw: bytes) -> None:
    try:
        _, params = parse_disposition(raw)
        name = params.get("name", b"").decode("utf-8", "replace")
        file_name(params, name)
    except BadInput:
        pass


# --- streaming into the spool ---------------------------------------------------------

BOUNDARY = "xYzZy"


def multipart(parts: list[tuple[bytes, bytes]]) -> bytes:
    body = b""
    for disposition, data in parts:
        body += f"--{BOUNDARY}\r\n".encode() + b"Content-Disposition: " + disposition
        body += b"\r\n\r\n" + data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def chunked(body: bytes, size: int) -> AsyncIterator[bytes]:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(0, len(body), size):
            yield body[i : i + size]

    return gen()


def read(body: bytes, spool: Path, size: int = 7, **kw: object) -> object:
    async def go() -> object:
        return await read_upload(
            f"multipart/form-data; boundary={BOUNDARY}", chunked(body, size), spool,
            max_file_bytes=int(kw.pop("max_file_bytes", 10_000)),  # type: ignore[call-overload]
            max_files=int(kw.pop("max_files", 5)),  # type: ignore[call-overload]
            **kw,  # type: ignore[arg-type]
        )

    return asyncio.run(go())


def test_files_stream_into_the_spool(tmp_path: Path) -> None:
    big = bytes(range(256)) * 30
    body = multipart([
        ('form-data; name="files"; filename="отчёт.txt"'.encode(), b"privet"),
        (b'form-data; name="metadata"', b'{"team": "ops"}'),
        (b'form-data; name="files"; filename=""', b""),  # an untouched browser input
        (b'form-data; name="files"; filename="q1/big.bin"', big),
        (b'form-data; name="files"; filename="empty.txt"', b""),
    ])
    for size in (1, 7, 65536):
        spool = tmp_path / f"s{size}"
        spool.mkdir()
        form = read(body, spool, size)
        assert [f.filename for f in form.files] == ["отчёт.txt", "q1/big.bin", "empty.txt"]  # type: ignore[attr-defined]
        assert [f.size for f in form.files] == [6, len(big), 0]  # type: ignore[attr-defined]
        assert sorted(p.name for p in spool.iterdir()) == ["00000", "00001", "00002"]
        assert (spool / "00001").read_bytes() == big
        assert form.metadata == '{"team": "ops"}'  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("parts", "error", "needle"),
    [
        ([(b'form-data; name="files"', b"abc")], BadInput, "file part 'files' has no filename"),
        ([(b'form-data; name="other"', b"abc")], BadInput, "unexpected form field 'other'"),
        ([('form-data; name="документ"; filename="a.txt"'.encode(), b"abc")], BadInput,
         "unexpected file field 'документ'"),
        ([(b'form-data; name="files"; filename=""', b"abc")], BadInput, "empty filename"),
        ([(b'form-data; name="files"; filename="../x.txt"', b"abc")], BadInput, "'..'"),
        ([(b'form-data; name="files"; filename="a.txt"', b"1"),
          (b'form-data; name="files"; filename="a.txt"', b"2")], BadInput, "both named"),
        ([(b'form-data; name="files"; filename="big.txt"', b"x" * 20_000)], LimitExceeded,
         "api.max_upload_bytes"),
        ([(f'form-data; name="files"; filename="{i}.txt"'.encode(), b"x") for i in range(6)],
         LimitExceeded, "api.max_files_per_request"),
    ],
)
def test_refused_forms_say_why(tmp_path: Path, parts: list[tuple[bytes, bytes]],
                               error: type[Exception], needle: str) -> None:
    with pytest.raises(error, match=needle):
        read(multipart(parts), tmp_path)


def test_in_flight_budget_stops_a_stream(tmp_path: Path) -> None:
    budget = UploadBudget(1000)
    other = budget.lease(600)  # another upload holds 600 bytes
    lease = budget.lease()
    body = multipart([(b'form-data; name="files"; filename="a.txt"', b"x" * 2000)])
    with pytest.raises(Busy, match="api.max_inflight_upload_bytes"):
        read(body, tmp_path, 100, on_chunk=lease.on_chunk, max_file_bytes=10_000)
    lease.release()
    other.release()
    assert budget.in_flight == 0


def test_metadata_rules() -> None:
    assert parse_metadata(None) == {} and parse_metadata("  ") == {}
    assert parse_metadata('{"team": "ops", "n": 2, "ok": true}') == {
        "team": "ops", "n": 2, "ok": True
    }
    for bad in ("[1]", "{", '{"a": null}', '{"a": {"b": 1}}'):
        with pytest.raises(BadInput):
            parse_metadata(bad)
