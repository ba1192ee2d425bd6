"""Uploads end to end: multipart in, background job, progress, then searchable and
citable; and every way an upload can be refused without storing anything."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.api.conftest import (
    COFFEE_TXT,
    MAX_FILES,
    MAX_UPLOAD_BYTES,
    Server,
    raw_request,
    wait_job,
)

# Real uvicorn servers on loopback: the slow tier (make test-slow).
pytestmark = pytest.mark.slow

GLOSSARY = b"""# Glossary

A zorblax is the quarterly budget review held by the finance team in the blue room.
"""


def upload(
    client: httpx.Client, collection: str, files: list[tuple[str, bytes]], **data: str
) -> httpx.Response:
    parts = [("files", (name, body, "application/octet-stream")) for name, body in files]
    return client.post(f"/v1/collections/{collection}/documents", files=parts, data=data)


def points(server: Server, collection: str) -> int:
    names = server.pipeline.collection_names()
    return server.pipeline.count(collection) if collection in names else 0


def test_upload_job_search_and_chat(http: httpx.Client) -> None:
    r = upload(http, "uploads", [("glossary.md", GLOSSARY), ("coffee.txt", COFFEE_TXT.encode())])
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["object"] == "ingest.job" and job["files_total"] == 2
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    done = wait_job(http, job["id"])
    assert done["status"] == "done"
    assert done["progress"] == 1.0
    assert [(f["source"], f["status"]) for f in done["files"]] == [
        ("upload/glossary.md", "added"),
        ("upload/coffee.txt", "added"),
    ]

    hits = http.post(
        "/v1/search", json={"collection": "uploads", "query": "what is a zorblax?", "limit": 3}
    ).json()["hits"]
    assert hits[0]["source"] == "upload/glossary.md"

    chat = http.post(
        "/v1/chat/completions",
        json={"model": "uploads", "messages": [{"role": "user", "content": "What is a zorblax?"}]},
    ).json()
    assert "quarterly budget review" in chat["choices"][0]["message"]["content"]
    assert chat["citations"][0]["source"] == "upload/glossary.md"

    docs = http.get("/v1/collections/uploads/documents").json()["data"]
    assert {d["source"] for d in docs} == {"upload/glossary.md", "upload/coffee.txt"}

    # Re-uploading the same bytes changes nothing.
    again = wait_job(http, upload(http, "uploads", [("glossary.md", GLOSSARY)]).json()["id"])
    assert again["files"][0]["status"] == "unchanged"

    gone = http.delete("/v1/collections/uploads/documents", params={"source": "upload/coffee.txt"})
    assert gone.status_code == 200 and gone.json()["points"] >= 1
    missing = http.delete(
        "/v1/collections/uploads/documents", params={"source": "upload/coffee.txt"}
    )
    assert missing.status_code == 404


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.strip().split("\n\n"):
        kind, data = "message", None
        for line in block.splitlines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data = json.loads(line.split(":", 1)[1])
        if data is not None:
            events.append((kind, data))
    return events


def test_job_events_stream_until_done(http: httpx.Client) -> None:
    files = [(f"note-{i}.txt", f"Note {i}: the gadget number {i} is blue.".encode())
             for i in range(3)]
    job = upload(http, "events", files).json()
    with http.stream("GET", f"/v1/jobs/{job['id']}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    events = parse_sse(body)
    assert events, body
    kinds = [k for k, _ in events]
    assert kinds[-1] == "done" and kinds.count("done") == 1
    assert all(k == "progress" for k in kinds[:-1])
    final = events[-1][1]
    assert final["status"] == "done" and final["files_done"] == 3
    done_counts = [d["files_done"] for _, d in events]
    assert done_counts == sorted(done_counts)


def test_metadata_and_unsafe_names(server: Server, http: httpx.Client) -> None:
    r = upload(
        http,
        "meta",
        [("gizmo.md", b"The gizmo manual says to oil the gizmo monthly."),
         ("sprockets.md", b"A second file about sprockets and gears.")],
        metadata=json.dumps({"team": "ops", "year": 2024}),
    )
    assert r.status_code == 202, r.text
    done = wait_job(http, r.json()["id"])
    assert done["status"] == "done"

    def search(metadata: dict[str, Any]) -> list[dict[str, Any]]:
        body = {"collection": "meta", "query": "gizmo", "filter": {"metadata": metadata}}
        return http.post("/v1/search", json=body).json()["hits"]

    hits = search({"team": "ops"})
    assert hits and hits[0]["metadata"]["team"] == "ops"
    assert search({"team": "finance"}) == []

    # Names that cannot be kept safely are refused by name, and nothing is stored.
    before = points(server, "meta")
    for bad, why in [("../../etc/evil.md", "'..'"), ("..\\..\\evil.md", "backslash"),
                     ("/etc/evil.md", "absolute"), ("evil\u202etxt.md", "control")]:
        r = upload(http, "meta", [("fine.md", b"fine"), (bad, b"The evil twin.")])
        assert r.status_code == 400, (bad, r.text)
        assert why in r.json()["error"]["message"]
    assert points(server, "meta") == before
    assert incoming(server) == []


def incoming(server: Server) -> list[str]:
    """Upload spools left on disk (there must be none once a request has ended)."""
    root = server.settings.data_path / "jobs" / "incoming"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def test_unicode_and_folder_names_are_kept_and_never_collide(http: httpx.Client) -> None:
    files = [
        ("café.txt", "Café: the espresso costs two euros.".encode()),
        ("cafè.txt", "Cafè: the grave accent file talks about tea.".encode()),
        ("отчёт.txt", "Отчёт: quarterly numbers for the northern depot.".encode()),
    ]
    first = wait_job(http, upload(http, "names", files).json()["id"])
    folders = [("q1/report.txt", b"Q1 report: revenue grew by four percent."),
               ("q2/report.txt", b"Q2 report: revenue fell by one percent.")]
    second = wait_job(http, upload(http, "names", folders).json()["id"])
    emoji = wait_job(http, upload(http, "names", [("日本_😀.txt", "日本 notes: sushi".encode())])
                     .json()["id"])
    stored = [f["source"] for job in (first, second, emoji) for f in job["files"]]
    assert stored == ["upload/café.txt", "upload/cafè.txt", "upload/отчёт.txt",
                      "upload/q1/report.txt", "upload/q2/report.txt", "upload/日本_😀.txt"]
    assert all(f["status"] == "added" for job in (first, second, emoji) for f in job["files"])
    docs = http.get("/v1/collections/names/documents").json()["data"]
    assert sorted(d["source"] for d in docs) == sorted(stored)  # six documents, none replaced

    # The same name in decomposed form (e + combining grave) is the same document.
    again = wait_job(http, upload(http, "names", [
        ("cafe\u0300.txt", "Cafè: the grave accent file talks about tea.".encode())
    ]).json()["id"])
    assert [(f["source"], f["status"]) for f in again["files"]] == [("upload/cafè.txt",
                                                                     "unchanged")]
    removed = http.delete("/v1/collections/names/documents",
                          params={"source": "upload/q1/report.txt"})
    assert removed.status_code == 200
    left = {d["source"] for d in http.get("/v1/collections/names/documents").json()["data"]}
    assert "upload/q2/report.txt" in left and "upload/q1/report.txt" not in left


def raw_upload(server: Server, disposition: bytes, data: bytes = b"hello") -> tuple[int, str]:
    """A multipart upload with a hand-written Content-Disposition (bytes as given)."""
    body = (b"--b\r\nContent-Disposition: " + disposition + b"\r\n\r\n" + data
            + b"\r\n--b--\r\n")
    head = ("POST /v1/collections/raw/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Connection: close\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return raw_request_bytes(server, head + body)


def raw_request_bytes(server: Server, request: bytes) -> tuple[int, str]:
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    header, _, body = data.partition(b"\r\n\r\n")
    return int(header.split()[1]), body.decode()


def test_non_ascii_headers_never_give_5xx(server: Server, http: httpx.Client) -> None:
    ok = [
        ('form-data; name="files"; filename="отчёт-raw.txt"'.encode(), "upload/отчёт-raw.txt"),
        (b"form-data; name=files; filename*=UTF-8''%E6%97%A5%E6%9C%AC_%F0%9F%98%80.txt",
         "upload/日本_😀.txt"),
        (b"form-data; name=\"files\"; filename=\"x.txt\"; filename*=utf-8''r%C3%A9sum%C3%A9.txt",
         "upload/résumé.txt"),
    ]
    for disposition, source in ok:
        status, body = raw_upload(server, disposition)
        assert status == 202, body
        job = wait_job(http, json.loads(body)["id"])
        assert job["files"][0]["source"] == source
    bad = [
        ('form-data; name="файлы"; filename="a.txt"'.encode(), 400, "unexpected file field"),
        (b'form-data; name="files"; filename="\xff\xfe.txt"', 400, "not valid UTF-8"),
        (b'form-data; name="\xff"; filename="a.txt"', 400, "not valid UTF-8"),
        (b'form-data; name="files"', 400, "file part 'files' has no filename"),
        (b'form-data; name="files"; filename=""', 400, "empty filename"),
        ("form-data; name=\"💥\"".encode(), 400, "unexpected form field '💥'"),
    ]
    for disposition, code, needle in bad:
        status, body = raw_upload(server, disposition)
        assert status == code, (disposition, body)
        assert needle in json.loads(body)["error"]["message"], body
    assert incoming(server) == []


def test_in_flight_cap_is_429_and_leaves_nothing(server: Server, http: httpx.Client) -> None:
    """One slow upload holds most of the server-wide budget; a second upload that would
    pass it gets a 429 that says to retry; the first still lands; no spool is left."""
    import threading

    release = threading.Event()
    started = threading.Event()
    boundary = "slowboundary"
    # ~500 KB of the 1 MiB budget, streamed without Content-Length, then a pause. Two of
    # the files are opaque bytes (skipped fast at ingest), so the job stays short.
    parts = [("slow.txt", b"Slow upload: the lighthouse keeper logs the fog horn hours."),
             ("blob-1.bin", bytes(250_000)), ("blob-2.bin", bytes(250_000))]
    held = sum(len(data) for _, data in parts)

    def slow_body() -> Any:
        for name, data in parts:
            yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
                   f"filename=\"{name}\"\r\n\r\n").encode() + data + b"\r\n"
        started.set()
        release.wait(30)
        yield f"--{boundary}--\r\n".encode()

    result: dict[str, httpx.Response] = {}

    def slow() -> None:
        with server.client() as client:
            result["slow"] = client.post(
                "/v1/collections/inflight/documents", content=slow_body(),
                headers={"content-type": f"multipart/form-data; boundary={boundary}"},
            )

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        assert started.wait(30)
        deadline = time.monotonic() + 30
        while server.app.state.service.uploads.in_flight.in_flight < held:
            assert time.monotonic() < deadline, "the slow upload never arrived"
            time.sleep(0.05)
        assert len(incoming(server)) == 1  # the slow upload's spool, being written
        busy = upload(http, "inflight", [(f"{i}.txt", b"y" * 200_000) for i in range(3)])
        assert busy.status_code == 429, busy.text
        err = busy.json()["error"]
        assert err["type"] == "rate_limit_error"
        assert "api.max_inflight_upload_bytes" in err["message"]
        assert "Retry" in err["message"] and busy.headers["retry-after"].isdigit()
        assert len(incoming(server)) == 1  # the refused one left no spool
    finally:
        release.set()
        thread.join(60)
    assert result["slow"].status_code == 202, result["slow"].text
    done = wait_job(http, result["slow"].json()["id"])
    assert done["files"][0]["source"] == "upload/slow.txt"
    assert done["files"][0]["status"] == "added"
    assert server.app.state.service.uploads.in_flight.in_flight == 0
    assert incoming(server) == []
    # With the budget free again the same upload is accepted.
    ok = upload(http, "inflight", [("second.txt", b"Second: the buoy is red.")])
    assert ok.status_code == 202
    wait_job(http, ok.json()["id"])


def test_refused_mid_stream_removes_the_partial_spool(server: Server, http: httpx.Client
                                                      ) -> None:
    # The first file is spooled completely before the second passes the per-file limit.
    spools = server.settings.data_path / "jobs"
    before = set(spools.glob("*/files/*"))  # jobs of earlier tests may still be running
    r = upload(http, "partial", [("ok.txt", b"a" * 100_000),
                                 ("big.txt", b"x" * (MAX_UPLOAD_BYTES + 1))])
    assert r.status_code == 413
    assert incoming(server) == []
    assert set(spools.glob("*/files/*")) <= before
    assert "partial" not in server.pipeline.collection_names()


def test_too_big_file_is_413_and_stores_nothing(server: Server, http: httpx.Client) -> None:
    big = b"x" * (MAX_UPLOAD_BYTES + 1)
    r = upload(http, "toobig", [("small.txt", b"tiny file about kites"), ("big.txt", big)])
    assert r.status_code == 413, r.text
    assert "big.txt" in r.json()["error"]["message"]
    assert "api.max_upload_bytes" in r.json()["error"]["message"]
    assert "toobig" not in server.pipeline.collection_names()


def test_too_many_files_is_413(server: Server, http: httpx.Client) -> None:
    files = [(f"f{i}.txt", f"file {i} about llamas".encode()) for i in range(MAX_FILES + 1)]
    r = upload(http, "toomany", files)
    assert r.status_code == 413
    assert "api.max_files_per_request" in r.json()["error"]["message"]
    assert "toomany" not in server.pipeline.collection_names()


def test_huge_declared_upload_is_refused_before_reading(server: Server) -> None:
    # httpx will not send a Content-Length it cannot honour, so speak HTTP by hand.
    status, body = raw_request(
        server,
        "POST /v1/collections/x/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {10**12}\r\n\r\n--b\r\n",
    )
    assert status == 413
    assert json.loads(body)["error"]["code"] == "limit_exceeded"


def test_corrupt_file_fails_alone_and_changes_nothing(server: Server, http: httpx.Client) -> None:
    wait_job(http, upload(http, "corrupt", [("ok.txt", b"Kites fly best in steady wind.")])
             .json()["id"])
    before = points(server, "corrupt")
    broken = [
        ("broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50),
        ("broken.png", b"\x89PNG\r\n\x1a\nxx"),
    ]
    job = wait_job(http, upload(http, "corrupt", broken).json()["id"])
    assert job["status"] == "done"
    for f in job["files"]:
        assert f["status"] == "failed"
        assert f["error"] and f["source"].split("/")[-1] in f["error"]
    assert points(server, "corrupt") == before


def test_upload_form_errors(http: httpx.Client) -> None:
    not_multipart = http.post("/v1/collections/x/documents", json={"files": []})
    assert not_multipart.status_code == 415
    no_files = http.post("/v1/collections/x/documents", files={"metadata": (None, "{}")})
    assert no_files.status_code == 400
    bad_meta = upload(http, "x", [("a.txt", b"a")], metadata="{not json")
    assert bad_meta.status_code == 400 and "metadata" in bad_meta.json()["error"]["message"]
    nested = upload(http, "x", [("a.txt", b"a")], metadata='{"a": {"b": 1}}')
    assert nested.status_code == 400
    wrong_field = http.post(
        "/v1/collections/x/documents", files={"document": ("a.txt", b"a")}
    )
    assert wrong_field.status_code == 400 and "'files'" in wrong_field.json()["error"]["message"]
    no_name = http.post("/v1/collections/x/documents", files={"files": (None, "just text")})
    assert no_name.status_code == 400
    assert "file part 'files' has no filename" in no_name.json()["error"]["message"]
    bad_name = upload(http, "no/slashes", [("a.txt", b"a")])
    assert bad_name.status_code in (400, 404)


def test_unknown_job_is_404(http: httpx.Client) -> None:
    assert http.get("/v1/jobs/0123456789abcdef").status_code == 404
    assert http.get("/v1/jobs/not-a-job!").status_code == 404
    assert http.get("/v1/jobs/0123456789abcdef/events").status_code == 404


def test_job_survives_in_the_job_store(http: httpx.Client, server: Server) -> None:
    response = upload(http, "events", [("late.txt", b"Late note on rivets.")])
    job = wait_job(http, response.json()["id"])
    time.sleep(0.05)
    stored = server.app.state.pipeline.job(job["id"])
    assert stored.status == "done"
