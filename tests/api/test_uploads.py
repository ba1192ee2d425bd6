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


def test_metadata_and_safe_names(http: httpx.Client) -> None:
    r = upload(
        http,
        "meta",
        [("../../etc/evil.md", b"The gizmo manual says to oil the gizmo monthly."),
         ("..\\..\\evil.md", b"A second evil file about sprockets and gears.")],
        metadata=json.dumps({"team": "ops", "year": 2024}),
    )
    assert r.status_code == 202, r.text
    done = wait_job(http, r.json()["id"])
    assert [f["source"] for f in done["files"]] == ["upload/evil.md", "upload/evil-2.md"]
    assert done["status"] == "done"

    def search(metadata: dict[str, Any]) -> list[dict[str, Any]]:
        body = {"collection": "meta", "query": "gizmo", "filter": {"metadata": metadata}}
        return http.post("/v1/search", json=body).json()["hits"]

    hits = search({"team": "ops"})
    assert hits and hits[0]["metadata"]["team"] == "ops"
    assert search({"team": "finance"}) == []


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
        "POST /v1/collections/x/documents HTTP/1.1\r\nHost: test\r\n"
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
