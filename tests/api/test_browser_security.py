"""What a web page in the user's browser can do to a server on this machine, against real
uvicorn servers: DNS rebinding (a foreign ``Host``) and cross-site writes are refused on
every route, ``/mcp`` included, with and without keys; CORS is off unless origins are
listed; and the server's local token counts only as the CLI sends it (Bearer, from
loopback, on the CLI's routes). The clients that must keep working (the openai SDK, the
CLI through the server, same-origin pages) are checked beside the attacks."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from cli.remote import RemotePipeline, ServerInfo
from tests.api.conftest import COFFEE_TXT, COLLECTION, KEYS, TLS_MD, Server, api_settings, serve

pytestmark = pytest.mark.slow

EVIL = "attacker.example"
EVIL_SITE = {"Origin": "http://evil.example"}
TOKEN = "the-local-token-of-this-test-server"
APP_ORIGIN = "https://app.example.test"
MCP_INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-03-26", "capabilities": {},
    "clientInfo": {"name": "t", "version": "0"}}}
MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}


def lan_address() -> str | None:
    """This machine's first non-loopback IPv4 address, if it has one."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return next((w for w in out.stdout.split() if "." in w and not w.startswith("127.")),
                None)


LAN = lan_address()


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Keys, a local token, CORS for one origin, bound to every interface (so it can be
    reached from a non-loopback address) with that address allowed as a Host."""
    settings = api_settings(
        tmp_path_factory.mktemp("api-token"), api_keys=KEYS, cors_origins=[APP_ORIGIN],
        allowed_hosts=[LAN] if LAN else [])
    with serve(settings, local_token=TOKEN, host="0.0.0.0") as srv:
        srv.ingest("team", {"team/tls.md": TLS_MD.encode()})
        yield srv


def no_secret(r: httpx.Response) -> None:
    assert "certctl" not in r.text and "espresso" not in r.text and "tls.md" not in r.text


def rebinding_requests(c: httpx.Client, key: str | None = None) -> list[httpx.Response]:
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    host = {"Host": EVIL, **auth}
    search = {"collection": COLLECTION if key is None else "team", "query": "tls"}
    chat = {"model": search["collection"],
            "messages": [{"role": "user", "content": "How do I rotate TLS certificates?"}]}
    return [
        c.get("/v1/collections", headers=host),
        c.post("/v1/search", json=search, headers=host),
        c.post("/v1/chat/completions", json=chat, headers=host),
        c.get("/", headers=host),
        c.get("/static/app.js", headers=host),
        c.post("/mcp", json=MCP_INIT, headers={**host, **MCP_ACCEPT}),
    ]


# ------------------------------------------------------------------- DNS rebinding
def test_dns_rebinding_is_refused_on_every_route(server: Server) -> None:
    with server.client() as c:
        for r in rebinding_requests(c):
            assert r.status_code == 400, r.request.url
            no_secret(r)
            error = r.json()["error"]
            assert error["code"] == "host_not_allowed" and "api.allowed_hosts" in error["message"]
        # The same requests by the server's real names are answered.
        port = server.url.rsplit(":", 1)[1]
        for name in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST.:{port}"):
            r = c.post("/v1/search", json={"collection": COLLECTION, "query": "rotate tls"},
                       headers={"Host": name})
            assert r.status_code == 200 and "certctl" in r.text, name


def test_dns_rebinding_is_refused_with_keys_too(keyed_server: Server) -> None:
    with keyed_server.client() as c:
        for r in rebinding_requests(c, key="admin-key"):
            assert r.status_code == 400, r.request.url
            no_secret(r)


def test_a_request_without_host_is_refused(server: Server) -> None:
    from tests.api.conftest import raw_request

    status, body = raw_request(server, "GET /v1/collections HTTP/1.0\r\n\r\n")
    assert status == 400 and "host_not_allowed" in body and "certctl" not in body


# --------------------------------------------------------------- cross-site writes
def spool(server: Server) -> list[Path]:
    jobs = server.settings.data_path / "jobs"
    return sorted(jobs.rglob("*")) if jobs.exists() else []


def test_cross_site_upload_is_refused_and_nothing_is_stored(server: Server) -> None:
    with server.client() as c:
        assert c.post("/v1/collections", json={"name": "xsite-up"}).status_code == 201
        before = spool(server)
        for headers in (EVIL_SITE, {"Sec-Fetch-Site": "cross-site"},
                        {"Sec-Fetch-Site": "same-site"}, {"Origin": "null"}):
            r = c.post("/v1/collections/xsite-up/documents", headers=headers,
                       files={"files": ("planted.txt", b"planted by another site")})
            assert r.status_code == 403, headers
            assert r.json()["error"]["code"] == "cross_site_request"
        assert c.get("/v1/collections/xsite-up/documents").json()["data"] == []
        assert spool(server) == before


def test_cross_site_delete_is_refused_and_the_collection_stays(server: Server) -> None:
    server.ingest("xsite-keep", {"keep/coffee.txt": COFFEE_TXT.encode()})
    with server.client() as c:
        assert c.delete("/v1/collections/xsite-keep", headers=EVIL_SITE).status_code == 403
        r = c.delete("/v1/collections/xsite-keep/documents",
                     params={"source": "keep/coffee.txt"},
                     headers={"Sec-Fetch-Site": "same-site"})
        assert r.status_code == 403
        names = [m["name"] for m in c.get("/v1/collections").json()["data"]]
        assert "xsite-keep" in names
        docs = c.get("/v1/collections/xsite-keep/documents").json()["data"]
        assert [d["source"] for d in docs] == ["keep/coffee.txt"]


def test_same_origin_writes_from_the_servers_own_page_pass(server: Server) -> None:
    page = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
    with server.client() as c:
        assert c.post("/v1/collections", json={"name": "xsite-own"},
                      headers=page).status_code == 201
        up = c.post("/v1/collections/xsite-own/documents", headers=page,
                    files={"files": ("mine.txt", b"uploaded from the chat page")})
        assert up.status_code == 202
        assert c.delete("/v1/collections/xsite-own", headers=page).status_code == 200


def test_mcp_refuses_cross_site_posts_with_and_without_keys(
    server: Server, keyed_server: Server
) -> None:
    for srv, auth in ((server, {}), (keyed_server, {"Authorization": "Bearer admin-key"})):
        with srv.client() as c:
            r = c.post("/mcp", json=MCP_INIT, headers={**EVIL_SITE, **MCP_ACCEPT, **auth})
            assert r.status_code == 403 and r.json()["error"]["code"] == "cross_site_request"
            r = c.post("/mcp", json=MCP_INIT, headers={**MCP_ACCEPT, **auth,
                                                        "Sec-Fetch-Site": "cross-site"})
            assert r.status_code == 403
            ok = c.post("/mcp", json=MCP_INIT, headers={**MCP_ACCEPT, **auth})
            assert ok.status_code == 200, ok.text


def test_the_openai_sdk_still_works(server: Server) -> None:
    client = OpenAI(base_url=server.v1, api_key="unused", max_retries=0)
    r = client.chat.completions.create(model=COLLECTION, messages=[
        {"role": "user", "content": "How do I rotate TLS certificates?"}])
    assert "certctl" in (r.choices[0].message.content or "")


# -------------------------------------------------------------------------- CORS
def preflight(c: httpx.Client, origin: str) -> httpx.Response:
    return c.options("/v1/search", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})


def test_cors_is_off_without_cors_origins(server: Server) -> None:
    with server.client() as c:
        for origin in (APP_ORIGIN, "http://evil.example"):
            r = preflight(c, origin)
            assert not [h for h in r.headers if h.startswith("access-control-")]
        r = c.post("/v1/search", json={"collection": COLLECTION, "query": "tls"},
                   headers={"Origin": APP_ORIGIN})
        assert r.status_code == 403


def test_cors_for_the_listed_origin_only(token_server: Server) -> None:
    with token_server.client("admin-key") as c:
        r = preflight(c, APP_ORIGIN)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == APP_ORIGIN
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-origin" not in preflight(c, "http://evil.example").headers
        r = c.post("/v1/search", json={"collection": "team", "query": "tls"},
                   headers={"Origin": APP_ORIGIN, "Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == APP_ORIGIN
        r = c.post("/v1/search", json={"collection": "team", "query": "tls"},
                   headers=EVIL_SITE)
        assert r.status_code == 403


# --------------------------------------------------------------------- local token
def bearer(token: str = TOKEN, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {token}"}


@pytest.mark.skipif(LAN is None, reason="this machine has no non-loopback address")
def test_the_local_token_does_not_count_from_another_address(
    token_server: Server, tmp_path: Path
) -> None:
    port = token_server.url.rsplit(":", 1)[1]
    doc = tmp_path / "secret.md"
    doc.write_text(TLS_MD)
    with httpx.Client(base_url=f"http://{LAN}:{port}", timeout=60) as c:
        assert c.get("/healthz").status_code == 200  # reachable, Host allowed
        r = c.get("/v1/collections", headers=bearer())
        assert r.status_code == 401
        r = c.post("/v1/collections/team/ingest", headers=bearer(),
                   json={"paths": [str(doc)], "cwd": str(tmp_path)})
        assert r.status_code == 401
        assert c.get("/v1/collections", headers=bearer("admin-key")).status_code == 200


@pytest.mark.parametrize("scheme", ["Basic", "Token", "bearer-ish"])
def test_the_local_token_counts_only_as_bearer(token_server: Server, scheme: str) -> None:
    with token_server.client() as c:
        r = c.get("/v1/collections", headers=bearer(scheme=scheme))
        assert r.status_code == 401


def test_the_local_token_counts_only_on_the_clis_routes(token_server: Server) -> None:
    with token_server.client() as c:
        assert c.get("/metrics", headers=bearer()).status_code == 401
        assert c.post("/v1/collections", json={"name": "by-token"},
                      headers=bearer()).status_code == 401
        assert c.get("/v1/models", headers=bearer()).status_code == 401
        r = c.post("/mcp", json=MCP_INIT, headers={**bearer(), **MCP_ACCEPT})
        assert r.status_code == 401
        assert c.get("/v1/collections", headers=bearer()).status_code == 200


def test_the_cli_through_the_server_still_works(token_server: Server, tmp_path: Path) -> None:
    """Every route :class:`RemotePipeline` calls, with the local token from loopback."""
    doc = tmp_path / "coffee.txt"
    doc.write_text(COFFEE_TXT)
    info = ServerInfo(token_server.url, 0, TOKEN)
    with RemotePipeline(info) as remote:
        report: Any = remote.ingest("cli-coll", [str(doc)])
        assert not report.failed
        assert {c["name"] for c in remote.collections()} >= {"team", "cli-coll"}
        assert [d["source"] for d in remote.documents("cli-coll")] == [str(doc)]
        assert remote.search("cli-coll", "espresso descaled")[0].source == str(doc)
        assert "citric" in remote.ask("cli-coll", "When is the espresso machine descaled?").text
        assert remote.delete_source("cli-coll", str(doc)) > 0
        remote.drop("cli-coll")
        assert "cli-coll" not in {c["name"] for c in remote.collections()}
