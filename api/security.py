"""What a browser may do to the server: the Host allowlist, cross-site writes, CORS.

Why: "only this machine" (a keyless server on loopback) includes every web page the user
has open, and a page can reach a local server in two ways the API keys do not stop when
there are none:

- **DNS rebinding.** ``attacker.example`` re-resolves to 127.0.0.1; its page then reads
  the API as same-origin. The request still carries ``Host: attacker.example``, so the
  server answers only the names it knows (:class:`HostAllowlist`): the loopback names,
  ``api.public_url``'s host, the bind address, and ``api.allowed_hosts``.
- **Cross-site writes.** A form or a "simple" ``fetch`` needs no CORS preflight: the page
  cannot read the answer, but the upload or the delete has happened. Browsers label such
  requests with ``Origin`` and ``Sec-Fetch-Site``, so state-changing methods whose labels
  name another site are refused (:func:`cross_site_reason`). Requests without those
  headers (curl, the openai SDK, the CLI, MCP clients) are not a browser's and pass.

CORS stays off (no ``Access-Control-*`` headers: other sites cannot read responses)
unless ``api.cors_origins`` names the origins whose pages may call the API.

:class:`BrowserGuard` is pure ASGI (``BaseHTTPMiddleware`` buffers streamed responses)
and wraps the whole app: ``/``, ``/static``, ``/v1``, ``/healthz`` and ``/mcp`` alike.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_code, error_response, status_of
from rag.errors import BadInput, ConfigError, Forbidden
from rag.settings import ApiSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Sec-Fetch-Site values of a request the user's own page (or the user) made.
SAME_SITE_FETCH = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})
_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")


class HostNotAllowed(BadInput):
    """The request's Host is not a name of this server (DNS rebinding, or a missing
    ``api.allowed_hosts`` entry)."""


class CrossSiteRequest(Forbidden):
    """A browser sent a state-changing request from another site's page."""


# ------------------------------------------------------------------------- parsing
@dataclass(frozen=True)
class HostPort:
    """A parsed Host: the name lower-cased without a trailing dot (IPv6 in brackets,
    compressed), and the port if one was given."""

    name: str
    port: int | None


def parse_host(value: str) -> HostPort | None:
    """``Host`` header (or allowlist entry) -> :class:`HostPort`; None when malformed.

    Strict on purpose: anything a browser would not send as a Host (userinfo, paths,
    spaces, an unbracketed IPv6, an empty label, a port out of range) is not a name of
    this server.
    """
    value = value.strip()
    if not value or len(value) > 300:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        try:
            addr = ipaddress.IPv6Address(value[1:end])
        except ValueError:
            return None
        name, rest = f"[{addr.compressed}]", value[end + 1:]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    else:
        name, sep, port_text_ = value.partition(":")
        port_text = port_text_ if sep else None
        name = name.lower()
        if name.endswith("."):
            name = name[:-1]
        labels = name.split(".")
        if not name or not all(_NAME.fullmatch(label) for label in labels):
            return None
    port: int | None = None
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
            return None
        port = int(port_text)
        if not 0 < port < 65536:
            return None
    return HostPort(name, port)


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        """As browsers send it: the default port left out."""
        default = _DEFAULT_PORTS[self.scheme] == self.port
        return f"{self.scheme}://{self.host}" + ("" if default else f":{self.port}")


def parse_origin(value: str) -> Origin | None:
    """An ``Origin`` header or ``api.cors_origins`` entry (``scheme://host[:port]``, the
    default port filled in); None for ``null`` and anything malformed."""
    value = value.strip()
    scheme, sep, rest = value.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https") or any(c in rest for c in "/?#@"):
        return None
    host = parse_host(rest)
    if host is None:
        return None
    return Origin(scheme, host.name, host.port or _DEFAULT_PORTS[scheme])


def own_origin(scheme: str, host: HostPort) -> Origin:
    """The origin of a page this server served over this request's scheme and Host."""
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return Origin(scheme, host.name, host.port or _DEFAULT_PORTS.get(scheme, 80))


# ----------------------------------------------------------------------- the rules
@dataclass(frozen=True)
class _Rule:
    name: str  # a name, "*.suffix" or "*"
    port: int | None

    def matches(self, host: HostPort) -> bool:
        if self.port is not None and host.port != self.port:
            return False
        if self.name == "*":
            return True
        if self.name.startswith("*."):
            return host.name.endswith(self.name[1:])
        return host.name == self.name


class HostAllowlist:
    """The Host names the server answers: the loopback names always (a page at
    ``localhost`` is this machine's own, and the CLI and health checks use them), plus
    ``api.allowed_hosts``, the host of ``api.public_url`` and a specific bind address."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.entries = list(dict.fromkeys(entries))
        self._rules = [_parse_rule(e) for e in self.entries]

    @classmethod
    def from_settings(cls, api: ApiSettings) -> HostAllowlist:
        entries = [*LOOPBACK_NAMES, *api.allowed_hosts]
        if api.public_url:
            public = urlsplit(api.public_url).hostname
            if public:
                entries.append(f"[{public}]" if ":" in public else public)
        bind = api.host.strip()
        if bind not in _WILDCARD_BINDS:
            entries.append(bind)
        allowlist = cls(entries)
        if allowlist.any_host and not api.api_keys:
            raise ConfigError(
                "api.allowed_hosts has '*' (any Host) but no API keys are set: any web page "
                "the user opens could then read and change every collection through DNS "
                "rebinding. List this server's host names instead, or set keys "
                "(MMRAG_API__API_KEYS='{\"<a long random key>\": [\"*\"]}')"
            )
        return allowlist

    @property
    def any_host(self) -> bool:
        return any(r.name == "*" and r.port is None for r in self._rules)

    def allows(self, host: HostPort) -> bool:
        return any(rule.matches(host) for rule in self._rules)

    def describe(self) -> str:
        return "any host" if self.any_host else ", ".join(self.entries)


def _parse_rule(entry: str) -> _Rule:
    text = entry.strip().lower()
    if text == "*":
        return _Rule("*", None)
    wildcard = text.startswith("*.")
    if text.count(":") > 1 and not text.startswith("["):
        text = f"[{text}]"  # a bare IPv6 address: the bind address form, "::1"
    parsed = parse_host(text[2:] if wildcard else text)
    if parsed is None:
        raise ConfigError(
            f"api.allowed_hosts entry {entry!r} is not a host name: use 'name', "
            "'name:port', '*.example.com' or '*'"
        )
    return _Rule(("*." if wildcard else "") + parsed.name, parsed.port)


def cross_site_reason(
    method: str,
    origin: str | None,
    fetch_site: str | None,
    own: Iterable[Origin],
    trusted: Iterable[Origin] = (),
) -> str | None:
    """Why a browser request must not change state, or None when it may.

    Only writes are judged (a cross-site read cannot see the answer without CORS). An
    ``Origin`` in ``trusted`` (``api.cors_origins``) passes whatever ``Sec-Fetch-Site``
    says; otherwise the origin must be the server's own, and ``Sec-Fetch-Site`` must not
    say ``cross-site`` or ``same-site`` (another port on localhost is another origin but
    the same site). ``Origin: null`` (sandboxed frames, file:// pages, redirects) is
    refused: it hides where the request came from.
    """
    if method.upper() not in WRITE_METHODS:
        return None
    if origin is not None:
        parsed = parse_origin(origin)
        if parsed is None:
            return f"its Origin {_show(origin)} does not say which page sent it"
        if parsed in set(trusted):
            return None
        if parsed not in set(own):
            return f"it comes from a page of {_show(origin)}, another site"
    if fetch_site is not None and fetch_site.strip().lower() not in SAME_SITE_FETCH:
        return f"the browser labelled it Sec-Fetch-Site: {_show(fetch_site)}"
    return None


def _show(value: str) -> str:
    return repr(value if len(value) <= 100 else value[:100] + "...")


# ----------------------------------------------------------------------- middleware
class BrowserGuard:
    """Refuses foreign Hosts (400) and cross-site writes (403) before any route runs.

    400, not 421 (the MCP SDK's choice): every client treats a 400 as final, whereas
    browsers and HTTP/2 clients retry a 421 on a new connection; it is also what Django
    and Starlette's ``TrustedHostMiddleware`` answer to a Host they do not serve.
    """

    def __init__(
        self,
        app: ASGIApp,
        allowlist: HostAllowlist,
        cors_origins: Iterable[Origin] = (),
        public_origin: Origin | None = None,
    ) -> None:
        self.app = app
        self.allowlist = allowlist
        self.trusted = frozenset(cors_origins)
        self.public_origin = public_origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        error = self.check(scope)
        if error is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": str(error)[:120]})
        else:
            response = error_response(status_of(error), str(error), error_code(error))
            await response(scope, receive, send)

    def check(self, scope: Scope) -> HostNotAllowed | CrossSiteRequest | None:
        headers: dict[bytes, list[str]] = {}
        for key, value in scope.get("headers") or []:
            headers.setdefault(key.lower(), []).append(value.decode("latin-1"))
        hosts = headers.get(b"host", [])
        host = parse_host(hosts[0]) if len(hosts) == 1 else None
        if host is None or not self.allowlist.allows(host):
            shown = _show(hosts[0]) if len(hosts) == 1 else ("no" if not hosts else "several")
            return HostNotAllowed(
                f"Host {shown} is not a name this server answers to (it answers "
                f"{self.allowlist.describe()}). If it is really this server's name, add it "
                "to api.allowed_hosts (e.g. MMRAG_API__ALLOWED_HOSTS='[\"rag.example.com\"]')"
            )
        if scope["type"] != "http":
            return None
        own = [own_origin(scope.get("scheme", "http"), host)]
        if self.public_origin is not None:
            own.append(self.public_origin)
        origins, sites = headers.get(b"origin"), headers.get(b"sec-fetch-site")
        reason = cross_site_reason(
            scope.get("method", "GET"),
            origins[-1] if origins else None,
            sites[-1] if sites else None,
            own,
            self.trusted,
        )
        if reason is None:
            return None
        return CrossSiteRequest(
            f"cross-site {scope.get('method')} refused: {reason}. Browsers may change data "
            "only from this server's own pages; to let another site's pages call the API, "
            "list its origin in api.cors_origins"
        )


def cors_origins(api: ApiSettings) -> list[Origin]:
    out = []
    for entry in api.cors_origins:
        origin = parse_origin(entry)
        if origin is None:
            raise ConfigError(
                f"api.cors_origins entry {entry!r} is not an origin: use "
                "'scheme://host[:port]', e.g. 'https://app.example.com'"
            )
        out.append(origin)
    return out


def install(app: FastAPI, api: ApiSettings) -> HostAllowlist:
    """Wrap ``app`` in CORS (only when ``api.cors_origins`` names origins) and, outside
    it, :class:`BrowserGuard`. Call last: the middleware added last runs first, so a
    foreign Host is refused before anything else sees the request. Raises
    :class:`ConfigError` for settings that would open the server to every page."""
    allowlist = HostAllowlist.from_settings(api)
    trusted = cors_origins(api)
    if trusted:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[str(origin) for origin in trusted],
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Retry-After"],
            max_age=600,
        )
    public = parse_origin(_origin_of(api.public_url)) if api.public_url else None
    app.add_middleware(BrowserGuard, allowlist=allowlist, cors_origins=trusted,
                       public_origin=public)
    return allowlist


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
