"""Signed media links: a short-lived URL that plays one media file without the Bearer
header.

Why: a ``<video>``/``<audio>`` element streams by HTTP Range but cannot send
``Authorization``, so with API keys on the chat page had to download a whole original
before playing it. The fix the object stores use (S3 presigned URLs, GCS signed URLs):
an authenticated client asks ``POST /v1/media/{key}/url`` and gets
``/v1/media/{key}?exp=...&kid=...&sig=...``, good for ``api.media_url_ttl_s`` seconds.

- ``sig`` is HMAC-SHA256, keyed by the issuing principal's link secret
  (:class:`~policy.principals.Authenticator` derives it from the API key and
  ``api.media_url_secret``), over the media key, the expiry, the key fingerprint
  (``kid``) and the principal's collection scope. Change any of them and it no longer
  matches; compared with :func:`hmac.compare_digest`.
- It is accepted only by ``GET /v1/media/{key}`` for that one key (:mod:`api.deps`);
  the route then applies the usual visibility rule with the principal the link names,
  so a document deleted since, or a key removed or rescoped since, plays no more.
- Checked in this order: well-formed (400), signature (403 ``media_link_invalid``),
  expiry (403 ``media_link_expired``), so a tampered expiry reads as tampered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from policy.principals import Principal
from rag.errors import BadInput, Forbidden
from rag.settings import ApiSettings

# Query parameters of a signed link; any of them present makes a request a signed one.
EXP, KID, SIG = "exp", "kid", "sig"
PARAMS = (EXP, KID, SIG)
_VERSION = "mmrag-media-link-v1"


class MediaLinkInvalid(Forbidden):
    """A signed media link whose signature does not match what it names."""


class MediaLinkExpired(Forbidden):
    """A signed media link past its expiry."""


@dataclass(frozen=True)
class SignedLink:
    query: str  # exp=...&kid=...&sig=..., URL-safe as it is
    expires_at: int  # Unix seconds


def scope_of(principal: Principal) -> str:
    """The collections a principal may see, canonical (sorted, JSON): what a link binds."""
    return "*" if principal.collections is None else json.dumps(sorted(principal.collections))


def is_signed(params: Mapping[str, str]) -> bool:
    return any(name in params for name in PARAMS)


class MediaLinks:
    """Issues and checks signed media links; the clock is injectable for tests."""

    def __init__(self, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self._clock = clock

    @classmethod
    def from_settings(cls, api: ApiSettings) -> MediaLinks:
        return cls(api.media_url_ttl_s)

    def issue(self, key: str, principal: Principal) -> SignedLink:
        if not principal.link_secret:
            raise Forbidden("this credential cannot sign media links; use an API key")
        expires = int(self._clock()) + self.ttl_s
        sig = _sign(principal, key, expires)
        kid = "" if principal.key_id is None else f"&{KID}={principal.key_id}"
        return SignedLink(f"{EXP}={expires}{kid}&{SIG}={sig}", expires)

    def verify(
        self,
        key: str,
        params: Mapping[str, str],
        candidates: Callable[[str | None], list[Principal]],
    ) -> Principal:
        """The principal a link was issued to, if the link is intact and unexpired for
        ``key``; raises otherwise (never a bare exception: every outcome is a 4xx)."""
        exp_text, sig = params.get(EXP), params.get(SIG)
        if exp_text is None or sig is None:
            missing = EXP if exp_text is None else SIG
            raise BadInput(
                f"a signed media link needs both '{EXP}' and '{SIG}'; '{missing}' is "
                f"missing. Ask for a whole link with POST /v1/media/{key}/url, or send "
                "the API key as 'Authorization: Bearer <key>' instead"
            )
        if not (exp_text.isascii() and exp_text.isdigit() and len(exp_text) <= 12):
            raise BadInput(f"'{EXP}' must be Unix seconds, not {exp_text[:20]!r}")
        expires = int(exp_text)
        given = sig.encode("utf-8", "replace")
        found: Principal | None = None
        for principal in candidates(params.get(KID)):
            # Every candidate is compared (no early exit), like API keys are.
            if principal.link_secret and hmac.compare_digest(
                _sign(principal, key, expires).encode(), given
            ):
                found = principal
        if found is None:
            raise MediaLinkInvalid(
                "this media link is not valid for this file: it was changed, or was "
                "issued for another file, by another server, or for an API key or scope "
                f"that has changed since. Ask for a new one with POST /v1/media/{key}/url"
            )
        if expires < self._clock():
            at = datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds")
            raise MediaLinkExpired(
                f"this media link expired at {at} (links last api.media_url_ttl_s = "
                f"{self.ttl_s} s); ask for a new one with POST /v1/media/{key}/url"
            )
        return found


def _sign(principal: Principal, key: str, expires: int) -> str:
    message = json.dumps([_VERSION, key, expires, principal.key_id, scope_of(principal)])
    digest = hmac.new(principal.link_secret, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
