"""Upload names, multipart headers, streaming to the spool and the in-flight budget, as
units (no server)."""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.errors import Busy
from api.filenames import (
    MAX_NAME_CHARS,
    clean_name,
    file_name,
    parse_disposition,
    source_names,
)
from api.limits import UploadBudget
from api.uploads import parse_metadata, read_upload
from rag.errors import BadInput, LimitExceeded


@pytest.mark.parametrize(
    "name",
    ["report.pdf", "café.txt", "cafè.txt", "отчёт.txt", "日本_😀.txt", "q1/report.txt",
     "a/b/c/d.md", ".env", "Résumé 2024.md", "semi;colon|pipe.txt", 'say "hi".txt',
     "100%.txt", "a%22b.txt", "👨\u200d👩\u200d👧.png"],
)
def test_names_are_kept(name: str) -> None:
    assert clean_name(name) == name


def test_nfc_equal_names_are_one_name() -> None:
    assert clean_name("cafe\u0301.txt") == "café.txt"
    assert clean_name("café.txt") != clean_name("cafè.txt")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("../../etc/passwd", "'..'"),
        ("q1/../../x.md", "'..'"),
        ("..\\..\\boot.ini", "backslash"),
        ("C:\\fakepath\\x.txt", "backslash"),
        ("/abs/path/x.md", "absolute"),
        ("C:x.md", "absolute"),
        ("a\x00b.txt", "control"),
        ("a\nb.txt", "control"),
        ("a\x85b.txt", "control"),
        ("invoice\u202etxt.exe", "control"),
        ("a//b.txt", "empty"),
        ("./a.txt", "'.'"),
        ("folder/", "empty"),
        ("  /a.txt", "blank"),
        ("", "empty name"),
        ("x" * (MAX_NAME_CHARS + 1), "limit"),
        ("/".join(["d"] * 40), "deep"),
    ],
)
def test_unsafe_names_are_refused_with_a_reason(raw: str, why: str) -> None:
    with pytest.raises(BadInput, match=why):
        clean_name(raw)


@given(st.text(max_size=300))
def test_accepted_names_are_safe_and_only_normalised(raw: str) -> None:
    try:
        name = clean_name(raw)
    except BadInput:
        return
    assert name == unicodedata.normalize("NFC", raw)  # keep or refuse: never rewritten
    segments = name.split("/")
    assert ".." not in segments and "" not in segments and "." not in segments
    assert "\\" not in name and not name.startswith("/")
    assert all(unicodedata.category(c) not in ("Cc", "Cs") for c in name)
    assert len(name) <= MAX_NAME_CHARS


@given(st.lists(st.text(min_size=1, max_size=20), max_size=8))
def test_source_names_never_merge_two_names(raw: list[str]) -> None:
    try:
        names = source_names(raw)
    except BadInput:
        return
    assert len(set(names)) == len(raw)
    assert all(n.startswith("upload/") for n in names)


def test_colliding_names_across_folders_and_accents_stay_apart() -> None:
    assert source_names(["café.txt", "cafè.txt", "q1/report.txt", "q2/report.txt"]) == [
        "upload/café.txt", "upload/cafè.txt", "upload/q1/report.txt", "upload/q2/report.txt"
    ]
    with pytest.raises(BadInput, match="both named"):
        source_names(["café.txt", "cafe\u0301.txt"])


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


def test_budget_429_when_busy_413_when_it_never_fits() -> None:
    budget = UploadBudget(1000)
    first = budget.lease(800)
    with pytest.raises(Busy, match="Retry"):
        budget.lease(300)
    with pytest.raises(LimitExceeded, match="split it"):
        budget.lease(1001)
    first.release()
    second = budget.lease(300)  # fits once the first is done
    assert budget.in_flight == 300
    second.release()
    streamed = budget.lease()
    streamed.on_chunk(900)
    with pytest.raises(LimitExceeded):
        streamed.on_chunk(200)
    streamed.release()
    assert budget.in_flight == 0


def test_metadata_rules() -> None:
    assert parse_metadata(None) == {} and parse_metadata("  ") == {}
    assert parse_metadata('{"team": "ops", "n": 2, "ok": true}') == {
        "team": "ops", "n": 2, "ok": True
    }
    for bad in ("[1]", "{", '{"a": null}', '{"a": {"b": 1}}'):
        with pytest.raises(BadInput):
            parse_metadata(bad)
