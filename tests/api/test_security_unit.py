"""The browser rules without a server: Host and Origin parsing, the allowlist, the
cross-site judgement, the local token's conditions, and the guard and CORS on the real
app (Starlette's TestClient, no lifespan: every request here is answered before a route
that needs the pipeline)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from api.app import create_app
from api.security import (
    HostAllowlist,
    HostPort,
    Origin,
    cross_site_reason,
    parse_host,
    parse_origin,
)
from policy.principals import LOCAL, Authenticator, is_loopback
from rag.errors import ConfigError
from rag.settings import ApiSettings
from tests.conftest import offline


# ------------------------------------------------------------------------------ Host
@pytest.mark.parametrize(("value", "expected"), [
    ("localhost", HostPort("localhost", None)),
    ("LocalHost:8080", HostPort("localhost", 8080)),
    ("localhost.:8080", HostPort("localhost", 8080)),
    ("127.0.0.1:1", HostPort("127.0.0.1", 1)),
    ("[::1]:8080", HostPort("[::1]", 8080)),
    ("[0:0:0:0:0:0:0:1]", HostPort("[::1]", None)),
    ("rag.Example.COM.", HostPort("rag.example.com", None)),
    ("svc_name:65535", HostPort("svc_name", 65535)),
])
def test_parse_host_normalises(value: str, expected: HostPort) -> None:
    assert parse_host(value) == expected


@pytest.mark.parametrize("value", [
    "", " ", "::1", "[::1", "[::1]x", "[nothost]:80", "localhost:", "localhost:0",
    "localhost:65536", "localhost:80:80", "user@localhost", "localhost/x", "local host",
    "a..b", ".localhost", "-a.example", "localhost:+80", "localhost:８０", "*.example.com",
])
def test_parse_host_refuses_what_no_browser_sends(value: str) -> None:
    assert parse_host(value) is None


@given(st.text(max_size=60))
def test_parse_host_and_origin_never_raise(value: str) -> None:
    parse_host(value)
    parse_origin(value)


@pytest.mark.parametrize(("value", "expected"), [
    ("http://localhost:8080", Origin("http", "localhost", 8080)),
    ("HTTPS://App.Example.com", Origin("https", "app.example.com", 443)),
    ("http://[::1]", Origin("http", "[::1]", 80)),
])
def test_parse_origin(value: str, expected: Origin) -> None:
    assert parse_origin(value) == expected


@pytest.mark.parametrize("value", [
    "null", "file://", "evil.example", "ftp://evil.example", "http://evil.example/path",
    "http://user@evil.example", "http://",
])
def test_parse_origin_refuses(value: str) -> None:
    assert parse_origin(value) is None


def test_origin_prints_as_browsers_send_it() -> None:
    assert str(Origin("https", "a.example", 443)) == "https://a.example"
    assert str(Origin("http", "a.example", 8080)) == "http://a.example:8080"


# ------------------------------------------------------------------------- allowlist
def allows(allowlist: HostAllowlist, host: str) -> bool:
    parsed = parse_host(host)
    return parsed is not None and allowlist.allows(parsed)


def test_default_allowlist_is_the_loopback_names_on_any_port() -> None:
    default = HostAllowlist.from_settings(ApiSettings())
    for host in ("localhost", "localhost:8080", "127.0.0.1:9", "[::1]:8080", "LOCALHOST."):
        assert allows(default, host), host
    for host in ("attacker.example", "127.0.0.2", "localhost.attacker.example",
                 "192.168.1.10:8080", "0.0.0.0:8080"):
        assert not allows(default, host), host


def test_public_url_and_a_specific_bind_address_are_names_of_the_server() -> None:
    api = ApiSettings(public_url="https://RAG.example.com/base", host="192.168.1.10")
    allowlist = HostAllowlist.from_settings(api)
    assert allows(allowlist, "rag.example.com")
    assert allows(allowlist, "192.168.1.10:8080")
    assert not allows(allowlist, "example.com")
    assert not allows(HostAllowlist.from_settings(ApiSettings(host="0.0.0.0")), "0.0.0.0")
    assert allows(HostAllowlist.from_settings(ApiSettings(host="::1")), "[::1]:80")


def test_allowed_hosts_entries() -> None:
    allowlist = HostAllowlist.from_settings(ApiSettings(
        allowed_hosts=["rag.example.com:8443", "*.corp.example", "fd00::2"]))
    assert allows(allowlist, "rag.example.com:8443")
    assert not allows(allowlist, "rag.example.com")  # a port in the entry is required
    assert allows(allowlist, "a.corp.example") and allows(allowlist, "a.b.corp.example:1")
    assert not allows(allowlist, "corp.example")
    assert not allows(allowlist, "evilcorp.example")
    assert allows(allowlist, "[fd00::2]:8080")
    assert allows(allowlist, "localhost:8080")  # loopback names stay


def test_any_host_needs_keys() -> None:
    with pytest.raises(ConfigError, match="api.allowed_hosts.*API keys"):
        HostAllowlist.from_settings(ApiSettings(allowed_hosts=["*"]))
    keyed = HostAllowlist.from_settings(ApiSettings(allowed_hosts=["*"],
                                                    api_keys={"k": ["*"]}))
    assert allows(keyed, "anything.example") and keyed.describe() == "any host"


@pytest.mark.parametrize("entry", ["http://rag.example.com", "rag.example.com/x", "a b", ""])
def test_a_malformed_entry_fails_at_start_up(entry: str) -> None:
    with pytest.raises(ConfigError, match="allowed_hosts entry"):
        HostAllowlist.from_settings(ApiSettings(allowed_hosts=[entry]))


# ----------------------------------------------------------------------- cross-site
OWN = [Origin("http", "localhost", 8080)]
TRUSTED = [Origin("https", "app.example.com", 443)]


@pytest.mark.parametrize(("method", "origin", "site"), [
    ("POST", "http://evil.example", None),
    ("DELETE", "http://evil.example", "cross-site"),
    ("PUT", "http://localhost:9999", "same-site"),  # another port: another origin
    ("PATCH", "https://localhost:8080", None),  # another scheme
    ("POST", "null", None),
    ("POST", None, "cross-site"),
    ("POST", None, "same-site"),
    ("POST", "http://localhost:8080", "same-site"),
    ("delete", "http://evil.example", None),
])
def test_cross_site_writes_are_refused(method: str, origin: str | None, site: str | None
                                       ) -> None:
    assert cross_site_reason(method, origin, site, OWN, TRUSTED) is not None


@pytest.mark.parametrize(("method", "origin", "site"), [
    ("POST", None, None),  # curl, SDKs, the CLI
    ("POST", "http://localhost:8080", "same-origin"),  # the chat page
    ("POST", "http://LOCALHOST:8080", None),
    ("DELETE", None, "none"),  # typed into the address bar / a bookmark
    ("POST", "https://app.example.com", "cross-site"),  # api.cors_origins
    ("GET", "http://evil.example", "cross-site"),  # reads: the page cannot see them
    ("OPTIONS", "http://evil.example", "cross-site"),
])
def test_same_origin_and_non_browser_requests_pass(method: str, origin: str | None,
                                                   site: str | None) -> None:
    assert cross_site_reason(method, origin, site, OWN, TRUSTED) is None


# ---------------------------------------------------------------------- local token
@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("192.0.2.2", False), ("fd00::2", False), ("::ffff:192.0.2.2", False),
    ("testclient", False), (None, False), ("", False),
])
def test_is_loopback(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_local_token_only_as_bearer_from_loopback() -> None:
    auth = Authenticator(ApiSettings(api_keys={"k": ["*"]}), local_token="tok")
    assert auth.authenticate_local("Bearer tok", "127.0.0.1") is LOCAL
    assert auth.authenticate_local("bearer  tok ", "::1") is LOCAL
    assert auth.authenticate_local("Bearer tok", "192.0.2.2") is None
    assert auth.authenticate_local("Basic tok", "127.0.0.1") is None
    assert auth.authenticate_local("Token tok", "127.0.0.1") is None
    assert auth.authenticate_local("Bearer other", "127.0.0.1") is None
    assert auth.authenticate_local("Bearer tok", None) is None
    # The plain key check never takes the local token, wherever it comes from.
    with pytest.raises(Exception, match="invalid API key"):
        auth.authenticate("Bearer tok")


# ---------------------------------------------------------- the guard on the real app
def client(tmp_path: Path, host: str = "127.0.0.1:8080", **api: object) -> TestClient:
    app = create_app(offline(tmp_path, api=api))
    return TestClient(app, base_url=f"http://{host}", raise_server_exceptions=False)


def test_foreign_host_gets_our_json_error_on_every_kind_of_route(tmp_path: Path) -> None:
    c = client(tmp_path)
    for method, path in (("GET", "/"), ("GET", "/static/app.js"), ("GET", "/healthz"),
                         ("GET", "/v1/collections"), ("POST", "/v1/search"),
                         ("GET", "/openapi.json"), ("GET", "/docs")):
        r = c.request(method, path, headers={"Host": "attacker.example"})
        assert r.status_code == 400, path
        error = r.json()["error"]
        assert error["code"] == "host_not_allowed"
        assert "'attacker.example'" in error["message"]
        assert "api.allowed_hosts" in error["message"]
    assert c.get("/healthz").status_code == 200


def test_cross_site_write_is_403_before_the_route(tmp_path: Path) -> None:
    c = client(tmp_path)
    r = c.delete("/v1/collections/kb", headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "cross_site_request"
    assert "api.cors_origins" in r.json()["error"]["message"]
    # Past the guard the route runs (503: no pipeline without the lifespan).
    same = c.delete("/v1/collections/kb", headers={"Origin": "http://127.0.0.1:8080",
                                                    "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 503


def test_cors_is_off_without_cors_origins(tmp_path: Path) -> None:
    c = client(tmp_path)
    pre = c.options("/v1/search", headers={"Origin": "https://app.example.com",
                                           "Access-Control-Request-Method": "POST"})
    assert not any(h.startswith("access-control-") for h in pre.headers)


def test_cors_for_exactly_the_listed_origins(tmp_path: Path) -> None:
    c = client(tmp_path, cors_origins=["https://app.example.com:443"])
    pre = c.options("/v1/search", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "authorization" in pre.headers["access-control-allow-headers"].lower()
    other = c.options("/v1/search", headers={"Origin": "http://evil.example",
                                             "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in other.headers
    # The listed origin may write although the browser calls it cross-site.
    r = c.post("/v1/collections", json={"name": "x"}, headers={
        "Origin": "https://app.example.com", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 503 and r.headers["access-control-allow-origin"]


def test_bad_security_settings_fail_when_the_app_is_built(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="API keys"):
        create_app(offline(tmp_path, api={"allowed_hosts": ["*"]}))
    with pytest.raises(ConfigError, match="cors_origins entry"):
        create_app(offline(tmp_path, api={"cors_origins": ["app.example.com"]}))
