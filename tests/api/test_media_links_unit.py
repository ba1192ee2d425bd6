"""Signed media links without a server: what a link binds, and every way it is refused."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from api.media_links import MediaLinkExpired, MediaLinkInvalid, MediaLinks, is_signed
from policy.principals import LOCAL, Authenticator, Principal
from rag.errors import BadInput, ConfigError, Forbidden
from rag.settings import ApiSettings

KEY = "ab" * 32 + "-orig"
OTHER = "cd" * 32 + "-orig"
T0 = 1_900_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def auth(keys: dict[str, list[str]] | None = None, secret: str = "") -> Authenticator:
    return Authenticator(ApiSettings(api_keys=keys or {}, media_url_secret=secret))


def principal_of(a: Authenticator, key: str) -> Principal:
    return a.authenticate(f"Bearer {key}")


def params(query: str) -> dict[str, str]:
    return dict(parse_qsl(query))


def test_a_link_names_its_principal_until_it_expires() -> None:
    clock = Clock()
    links, a = MediaLinks(600, clock), auth({"team-key": ["team"]})
    team = principal_of(a, "team-key")
    link = links.issue(KEY, team)
    assert link.expires_at == T0 + 600
    got = params(link.query)
    assert got["kid"] == team.key_id and got["exp"] == str(int(T0 + 600))
    assert "team-key" not in link.query, "the key itself never appears"
    assert links.verify(KEY, got, a.by_key_id) == team
    clock.now = T0 + 600  # the last second it is good for
    assert links.verify(KEY, got, a.by_key_id) == team
    clock.now = T0 + 601
    with pytest.raises(MediaLinkExpired, match="expired at .*POST /v1/media/"):
        links.verify(KEY, got, a.by_key_id)


def test_a_changed_link_is_refused_before_its_expiry_is_looked_at() -> None:
    clock = Clock()
    links, a = MediaLinks(600, clock), auth({"team-key": ["team"], "admin": ["*"]})
    good = params(links.issue(KEY, principal_of(a, "team-key")).query)
    flipped = good["sig"][:-1] + ("A" if good["sig"][-1] != "A" else "B")
    admin_kid = principal_of(a, "admin").key_id or ""
    for bad in (
        {**good, "sig": flipped},
        {**good, "exp": str(int(good["exp"]) + 3600)},  # a longer life
        {**good, "exp": "1"},  # long past, but the signature is what fails
        {**good, "kid": admin_kid},  # another key's scope
        {k: v for k, v in good.items() if k != "kid"},
        {**good, "sig": "é" * 43},  # not ASCII: still a clean refusal
    ):
        with pytest.raises(MediaLinkInvalid, match="not valid for this file"):
            links.verify(KEY, bad, a.by_key_id)
    with pytest.raises(MediaLinkInvalid):
        links.verify(OTHER, good, a.by_key_id)  # another file


@pytest.mark.parametrize(("given", "message"), [
    ({"exp": "123"}, "'sig' is missing"),
    ({"sig": "x", "kid": "y"}, "'exp' is missing"),
    ({"kid": "y"}, "needs both"),
    ({"exp": "soon", "sig": "x"}, "Unix seconds"),
    ({"exp": "-5", "sig": "x"}, "Unix seconds"),
    ({"exp": "9" * 40, "sig": "x"}, "Unix seconds"),
])
def test_an_incomplete_link_is_bad_input(given: dict[str, str], message: str) -> None:
    assert is_signed(given)
    with pytest.raises(BadInput, match=message):
        MediaLinks(600).verify(KEY, given, auth({"k": ["*"]}).by_key_id)


def test_replicas_with_the_same_keys_verify_each_others_links() -> None:
    keys = {"team-key": ["team"]}
    one, two = auth(keys), auth(keys)
    link = params(MediaLinks(600).issue(KEY, principal_of(one, "team-key")).query)
    assert MediaLinks(600).verify(KEY, link, two.by_key_id).collections == {"team"}


@pytest.mark.parametrize("later", [
    auth({}),  # the key was removed
    auth({"team-key": ["team", "more"]}),  # its scope changed
    auth({"team-key": ["team"]}, secret="s" * 32),  # media_url_secret was set (rotated)
    auth({"other-key": ["team"]}),  # the same scope under another key
])
def test_a_link_dies_when_its_key_scope_or_the_secret_changes(later: Authenticator) -> None:
    link = params(MediaLinks(600).issue(
        KEY, principal_of(auth({"team-key": ["team"]}), "team-key")).query)
    with pytest.raises(MediaLinkInvalid):
        MediaLinks(600).verify(KEY, link, later.by_key_id)


def test_without_keys_links_are_per_process() -> None:
    first, second = auth(), auth()
    opened = first.authenticate(None)
    link = params(MediaLinks(600).issue(KEY, opened).query)
    assert "kid" not in link
    assert MediaLinks(600).verify(KEY, link, first.by_key_id) == opened
    with pytest.raises(MediaLinkInvalid):  # a restarted server has another secret
        MediaLinks(600).verify(KEY, link, second.by_key_id)


def test_the_local_token_signs_nothing_and_short_secrets_are_refused() -> None:
    with pytest.raises(Forbidden, match="cannot sign"):
        MediaLinks(600).issue(KEY, LOCAL)
    with pytest.raises(ConfigError, match="at least 32"):
        auth({"k": ["*"]}, secret="short")
    assert "link_secret" not in repr(principal_of(auth({"k": ["*"]}), "k"))
