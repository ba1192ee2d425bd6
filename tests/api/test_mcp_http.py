"""MCP over streamable HTTP at ``/mcp`` of a real server, with the SDK's own client:
tool listing and schemas, text and image content, tool errors, API keys and scopes."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import pytest

from mcpserver.render import THUMB_SIDE
from tests.api.conftest import TLS_MD, Server, data_url, text_png
from tests.mcpserver.client import http_client, images, run, texts, tool_map

TOOLS = {"search", "ask", "collections", "documents", "ingest", "delete"}


async def _call(url: str, name: str, args: dict[str, Any], key: str | None = None) -> Any:
    async with http_client(url, key) as client:
        return await client.call_tool(name, args)


def call(server: Server, name: str, args: dict[str, Any], key: str | None = None) -> Any:
    return run(lambda: _call(server.url, name, args, key))


def test_tools_are_listed_with_schemas_and_descriptions(server: Server) -> None:
    async def go() -> Any:
        async with http_client(server.url) as client:
            return await client.list_tools()

    tools = tool_map(run(go))
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert len(tool.description or "") > 40, tool.name
        assert tool.input_schema["type"] == "object"
    search = tools["search"].input_schema
    assert search["required"] == ["collection"]
    assert {"collection", "query", "image", "limit", "filter", "images"} <= set(
        search["properties"])
    assert search["properties"]["limit"]["maximum"] == 50
    ask = tools["ask"].input_schema["properties"]
    assert {"question", "image", "history"} <= set(ask)
    # Over HTTP, ingest takes uploaded bytes, never paths on the server's machine.
    ingest = tools["ingest"].input_schema
    assert "files" in ingest["properties"] and "paths" not in ingest["properties"]
    assert tools["delete"].annotations.destructive_hint is True
    assert tools["search"].annotations.read_only_hint is True


def test_search_returns_cited_text_and_the_picture(server: Server) -> None:
    result = call(server, "search", {"collection": "kb", "query": "parcel from Rotterdam",
                                     "limit": 3})
    assert not result.is_error
    text = texts(result)
    assert "[1] corpus/invoice.png, page 1 (image), score" in text
    assert "> Parcel 4471 ships from Rotterdam harbour" in text
    pictures = images(result)
    assert len(pictures) >= 1
    assert max(pictures[0].size) <= THUMB_SIDE
    hits = result.structured_content["hits"]
    assert hits[0]["source"] == "corpus/invoice.png" and hits[0]["media"]


def test_search_with_an_image_data_url(server: Server) -> None:
    query = data_url(text_png(["Parcel 4471 ships", "from Rotterdam harbour"]))
    result = call(server, "search", {"collection": "kb", "image": query, "images": 0})
    assert not result.is_error, texts(result)
    assert result.structured_content["hits"][0]["source"] == "corpus/invoice.png"
    assert images(result) == []  # images: 0 asks for text only


def test_ask_answers_with_numbered_citations_and_cited_images(server: Server) -> None:
    result = call(server, "ask", {"collection": "kb",
                                  "question": "where does parcel 4471 ship from?"})
    assert not result.is_error
    text = texts(result)
    assert "[1]" in text and "Sources:" in text and "corpus/invoice.png" in text
    assert "region x0,y0,x1,y1" in text  # the OCR box of the cited line
    assert images(result)
    citations = result.structured_content["citations"]
    assert any(c["source"] == "corpus/invoice.png" for c in citations)


def test_documents_and_collections(server: Server) -> None:
    cols = call(server, "collections", {})
    assert any(c["name"] == "kb" for c in cols.structured_content["collections"])
    docs = call(server, "documents", {"collection": "kb"})
    sources = {d["source"] for d in docs.structured_content["documents"]}
    assert {"corpus/tls.md", "corpus/invoice.png", "corpus/press.pdf"} <= sources


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"collection": "nope", "query": "x"}, "collection 'nope' does not exist"),
        ({"collection": "kb"}, "search needs a query, an image, or both"),
        ({"collection": "kb", "query": "x", "limit": 500}, "less than or equal to 50"),
        ({"collection": "kb", "image": "data:image/png;base64,!!!"}, "image"),
        ({"collection": "kb", "image": "/etc/passwd"}, "data URL"),
        ({"collection": "kb", "query": "x", "filter": {"modality": ["video"]}}, "modality"),
    ],
)
def test_bad_calls_are_tool_errors(server: Server, args: dict[str, Any], message: str) -> None:
    result = call(server, "search", args)
    assert result.is_error
    assert message in texts(result)


def test_unknown_tool_is_an_error_not_a_crash(server: Server) -> None:
    result = call(server, "drop_everything", {})
    assert result.is_error
    # The server is still fine afterwards.
    assert not call(server, "collections", {}).is_error


def test_ingest_uploads_then_delete(server: Server) -> None:
    payload = base64.b64encode(b"The staging cluster is patched on Thursdays.").decode()
    result = call(server, "ingest", {"collection": "mcp-up", "files": [
        {"name": "notes.txt", "data": payload},
        {"name": "bad.txt", "data": "not base64 at all!"},
    ]})
    assert result.is_error
    assert "bad.txt: data is not valid base64" in texts(result)

    result = call(server, "ingest", {"collection": "mcp-up",
                                     "files": [{"name": "notes.txt", "data": payload}]})
    assert not result.is_error, texts(result)
    assert "added: upload/notes.txt" in texts(result)
    hits = call(server, "search", {"collection": "mcp-up", "query": "staging cluster patch"})
    assert hits.structured_content["hits"][0]["source"] == "upload/notes.txt"

    gone = call(server, "delete", {"collection": "mcp-up", "source": "upload/notes.txt"})
    assert not gone.is_error and gone.structured_content["points"] >= 1
    again = call(server, "delete", {"collection": "mcp-up", "source": "upload/notes.txt"})
    assert again.is_error and "is not in collection" in texts(again)


# --------------------------------------------------------------------------- keys


def test_mcp_without_a_key_is_401(keyed_server: Server) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = httpx.post(keyed_server.url + "/mcp", json=body, timeout=30,
                       headers={"Accept": "application/json, text/event-stream", **headers})
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["type"] == "authentication_error"


def test_client_without_key_cannot_connect(keyed_server: Server) -> None:
    async def go() -> None:
        async with http_client(keyed_server.url) as client:
            await client.list_tools()

    with pytest.raises(BaseException):  # noqa: B017 - the SDK raises its own error type
        run(go)


def test_scoped_key_sees_only_its_collections(keyed_server: Server) -> None:
    cols = call(keyed_server, "collections", {}, key="team-key")
    assert [c["name"] for c in cols.structured_content["collections"]] == ["team"]
    admin = call(keyed_server, "collections", {}, key="admin-key")
    assert {"team", "secret"} <= {c["name"] for c in admin.structured_content["collections"]}

    ok = call(keyed_server, "search", {"collection": "team", "query": "rotate TLS"},
              key="team-key")
    assert not ok.is_error and "team/tls.md" in texts(ok)
    # Another team's collection answers exactly like a missing one.
    hidden = call(keyed_server, "search", {"collection": "secret", "query": "espresso"},
                  key="team-key")
    missing = call(keyed_server, "search", {"collection": "nothing-here", "query": "x"},
                   key="team-key")
    assert hidden.is_error and missing.is_error
    assert texts(hidden).replace("secret", "X") == texts(missing).replace("nothing-here", "X")


def test_writes_need_a_key_that_may_use_the_collection(keyed_server: Server) -> None:
    payload = base64.b64encode(TLS_MD.encode()).decode()
    denied = call(keyed_server, "ingest", {"collection": "secret",
                                           "files": [{"name": "x.md", "data": payload}]},
                  key="team-key")
    assert denied.is_error and "may not create it" in texts(denied)
    refused = call(keyed_server, "delete", {"collection": "secret",
                                            "source": "secret/coffee.txt"}, key="team-key")
    assert refused.is_error and "does not exist" in texts(refused)
    still = call(keyed_server, "documents", {"collection": "secret"}, key="admin-key")
    assert [d["source"] for d in still.structured_content["documents"]] == ["secret/coffee.txt"]

    fresh = base64.b64encode(b"# On call\n\nThe pager rotation changes on Mondays.").decode()
    added = call(keyed_server, "ingest", {"collection": "team",
                                          "files": [{"name": "extra.md", "data": fresh}]},
                 key="team-key")
    assert not added.is_error, texts(added)
    removed = call(keyed_server, "delete", {"collection": "team", "source": "upload/extra.md"},
                   key="team-key")
    assert not removed.is_error


def test_a_session_cannot_switch_keys(keyed_server: Server) -> None:
    """The session id from one key is useless with another (no session hijacking)."""
    headers = {"Accept": "application/json, text/event-stream"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}}
    with httpx.Client(base_url=keyed_server.url, timeout=30) as http:
        r = http.post("/mcp", json=init, headers={**headers, "Authorization": "Bearer team-key"})
        assert r.status_code == 200
        sid = r.headers["mcp-session-id"]
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        other = http.post("/mcp", json=listing, headers={
            **headers, "Authorization": "Bearer admin-key", "mcp-session-id": sid,
            "mcp-protocol-version": "2025-06-18"})
        assert other.status_code == 404


# --------------------------------------------------------------------------- uploads


def test_ingest_runs_as_a_job_and_reports_progress(server: Server) -> None:
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    files = [{"name": "q3/ferry.txt", "data": base64.b64encode(
                 b"The harbour ferry leaves every forty minutes.").decode()},
             {"name": "q3/tram.txt", "data": base64.b64encode(
                 b"Night trams run on the ring line only.").decode()}]

    async def go() -> Any:
        async with http_client(server.url) as client:
            return await client.call_tool("ingest", {"collection": "mcp-jobs", "files": files},
                                          progress_callback=on_progress)

    result = run(go)
    assert not result.is_error, texts(result)
    job_id = result.structured_content["job"]
    assert texts(result).startswith(f"job {job_id}: done")
    assert "added: upload/q3/ferry.txt" in texts(result)
    assert [f["status"] for f in result.structured_content["files"]] == ["added", "added"]
    assert seen and seen[-1] == (2.0, 2.0)
    # The same job, as the REST API sees it: MCP uploads are server jobs like any other.
    with server.client() as http:
        job = http.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "done" and job["collection"] == "mcp-jobs"
    assert server.app.state.uploads.spool.bytes_of(job_id) is None  # given back


def test_mcp_and_rest_uploads_share_one_spool_budget(server: Server) -> None:
    uploads = server.app.state.uploads
    assert server.app.state.service.uploads is uploads
    held = uploads.spool.reserve(uploads.spool.limit - uploads.spool.used - 10)
    try:
        payload = base64.b64encode(b"Spare tyres are kept in bay four.").decode()
        busy = call(server, "ingest", {"collection": "mcp-busy",
                                       "files": [{"name": "tyres.txt", "data": payload}]})
        assert busy.is_error
        assert "api.max_spool_bytes" in texts(busy) and "Retry in 30 seconds" in texts(busy)
        with server.client() as http:
            r = http.post("/v1/collections/mcp-busy/documents",
                          files={"files": ("tyres.txt", b"Spare tyres are kept in bay four.")})
        assert r.status_code == 429 and r.headers["retry-after"] == "30"
        assert "api.max_spool_bytes" in r.json()["error"]["message"]
    finally:
        uploads.spool.give_back(held)
    ok = call(server, "ingest", {"collection": "mcp-busy",
                                 "files": [{"name": "tyres.txt", "data": payload}]})
    assert not ok.is_error, texts(ok)


def test_an_upload_job_outlives_the_client_that_started_it(server: Server) -> None:
    """The caller goes away mid-call (it cancels as soon as the job is queued, then closes
    its session): the job is the server's, so its files are still ingested."""
    import anyio

    pictures = [{"name": f"gone/scan{i}.png", "data": base64.b64encode(text_png(
        [f"Pallet {i} of the abandoned call", "reached the loading dock"])).decode()}
        for i in range(3)]
    finished: list[bool] = []

    async def go() -> None:
        queued = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None
                              ) -> None:
            queued.set()  # the first notification comes once the job is submitted

        async def ingest() -> None:
            await client.call_tool("ingest", {"collection": "mcp-gone", "files": pictures},
                                   progress_callback=on_progress)
            finished.append(True)

        async with http_client(server.url) as client, anyio.create_task_group() as tg:
            tg.start_soon(ingest)
            await queued.wait()
            tg.cancel_scope.cancel()

    run(go)
    assert not finished, "the call returned before the client left"
    deadline = time.monotonic() + 120
    while not server.pipeline.has_collection("mcp-gone") or len(
            server.pipeline.documents("mcp-gone")) < 3:
        assert time.monotonic() < deadline, "the abandoned upload was never ingested"
        time.sleep(0.2)
