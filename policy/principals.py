"""Principals: who is calling (an API key, the local CLI's token, or nobody on an open
server) and what each may see. One module for every surface: the HTTP routes and MCP
over HTTP authenticate the same ``Authorization`` header the same way.

``api.api_keys`` maps a key to the collections it may use (``"*"`` = all). The rule for
a key that asks about a collection outside its scope is *404, the same 404 a missing
collection gets*: a 403 would confirm that the collection exists. Where a request names
no collection (metrics, creating one for someone else) there is nothing to leak, and
the honest 403 is returned instead.

With no keys configured everything is open; ``mmrag serve`` then refuses to bind to
anything but loopback (see ``cli/serve.py``), so "no keys" never means "open to the
network".
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field

from rag.errors import ConfigError, Forbidden, NotFound, Unauthorized
from rag.settings import ApiSettings

ALL = "*"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key fingerprint (for logs, never the key) and its scope."""

    key_id: str | None
    collections: frozenset[str] | None  # None: every collection
    # The server's own local token (``server.json`` in the data dir): the CLI on the same
    # machine, run by someone who can read that data dir. Only it may ingest server paths.
    local: bool = False
    # The key that signs media links on this principal's behalf (api/media_links.py):
    # derived from its API key, never the key itself. Empty: it may not sign any.
    link_secret: bytes = field(default=b"", repr=False, compare=False)

    @property
    def unrestricted(self) -> bool:
        return self.collections is None

    def can_see(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections


OPEN = Principal(key_id=None, collections=None)
LOCAL = Principal(key_id="local", collections=None, local=True)


def collection_not_found(collection: str) -> NotFound:
    """The one message for "missing" and "not yours", so the two cannot be told apart,
    the same on every surface (it names where each lists what the caller can use)."""
    return NotFound(
        f"collection {collection!r} does not exist; the collections this key can use are "
        "listed by GET /v1/models (HTTP) and the `collections` tool (MCP)"
    )


def require_visible(principal: Principal, collection: str) -> None:
    if not principal.can_see(collection):
        raise collection_not_found(collection)


def require_unrestricted(principal: Principal, what: str) -> None:
    if not principal.unrestricted:
        raise Forbidden(f"{what} needs an API key scoped to all collections ('*')")


LINK_SECRET_MIN = 32
_LINK_PURPOSE = b"mmrag media links v1\0"


class Authenticator:
    """Checks ``Authorization: Bearer <key>`` against the configured keys.

    Keys are compared with :func:`hmac.compare_digest` against every configured key (no
    early exit), so response timing does not reveal how much of a guess was right.

    Each key's principal also gets a link secret, ``HMAC(key, purpose + media_url_secret)``:
    replicas sharing ``api.api_keys`` derive the same one (a link issued by one plays from
    another), removing a key kills its links, and the key itself never signs anything. On
    a server without keys the open principal's link secret is random per process.
    """

    def __init__(self, settings: ApiSettings, local_token: str | None = None) -> None:
        extra = settings.media_url_secret.encode()
        if extra and len(extra) < LINK_SECRET_MIN:
            raise ConfigError(
                f"api.media_url_secret has {len(extra)} characters; use at least "
                f"{LINK_SECRET_MIN} (e.g. `openssl rand -hex 32`), or leave it empty"
            )
        self._local = local_token.encode() if local_token else None
        self._open = Principal(None, None, link_secret=secrets.token_bytes(32))
        self._keys: list[tuple[bytes, Principal]] = []
        for key, scope in settings.api_keys.items():
            fingerprint = hashlib.sha256(key.encode()).hexdigest()[:8]
            collections = None if ALL in scope else frozenset(scope)
            secret = hmac.new(key.encode(), _LINK_PURPOSE + extra, hashlib.sha256).digest()
            self._keys.append(
                (key.encode(), Principal(fingerprint, collections, link_secret=secret))
            )

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def authenticate_local(self, authorization: str | None, client_host: str | None
                           ) -> Principal | None:
        """:data:`LOCAL` for the server's own token sent as ``Bearer`` from a loopback
        address, else None (the caller then checks API keys).

        The token lives in ``server.json``, which only the data dir's owner can read, but
        it is the one credential that may read server-side paths: so it also counts only
        from this machine (a leaked copy is useless elsewhere), only under the scheme the
        CLI sends, and (the caller's part: ``api.deps``) only on the routes the CLI calls.
        """
        if self._local is None or not authorization or not is_loopback(client_host):
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        if hmac.compare_digest(self._local, token.strip().encode()):
            return LOCAL
        return None

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an API key (never of the local token: see
        :meth:`authenticate_local`)."""
        if not self._keys:
            return self._open
        if not authorization:
            raise Unauthorized(
                "missing API key: send it as 'Authorization: Bearer <key>' "
                "(the openai SDK's api_key)"
            )
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <key>'")
        candidate = token.strip().encode()
        found: Principal | None = None
        for key, principal in self._keys:
            if hmac.compare_digest(key, candidate):
                found = principal
        if found is None:
            raise Unauthorized("invalid API key")
        return found

    def by_key_id(self, key_id: str | None) -> list[Principal]:
        """The principals a signed link names (by key fingerprint; None on a server
        without keys): candidates only, the link's signature decides. Several when two
        keys share a fingerprint; none for a key since removed."""
        if not self._keys:
            return [self._open] if key_id is None else []
        return [p for _, p in self._keys if key_id is not None and p.key_id == key_id]


def is_loopback(host: str | None) -> bool:
    """Whether a client address (ASGI ``scope["client"][0]``) is this machine's loopback,
    IPv4-mapped IPv6 (``::ffff:127.0.0.1``) included; a unix socket (None) is not."""
    if not host:
        return False
    try:
        addr = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return bool(addr.is_loopback or (mapped is not None and mapped.is_loopback))
