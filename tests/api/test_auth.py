"""API keys: 401 without or with a wrong key, 404 for collections outside the key's scope
(indistinguishable from missing ones), 403 where no collection is named."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI

from tests.api.conftest import Server

# Real uvicorn servers on loopback: the slow tier (make test-slow).
pytestmark = pytest.mark.slow

def test_no_key_and_wrong_key_are_401(keyed_server: Server) -> None:
    with keyed_server.client() as anon, keyed_server.client("wrong") as wrong:
        for client in (anon, wrong):
            for r in (
                client.get("/v1/models"),
                client.post("/v1/search", json={"collection": "team", "query": "tls"}),
                client.post("/v1/collections/team/documents", files={"files": ("a.txt", b"a")}),
                client.get("/metrics"),
            ):
                assert r.status_code == 401, r.request.url
                assert r.json()["error"]["type"] == "authentication_error"
                assert r.headers["www-authenticate"] == "Bearer"
        basic = keyed_server.client()
        r = basic.get("/v1/models", headers={"Authorization": "Basic YTpi"})
        assert r.status_code == 401 and "Bearer" in r.json()["error"]["message"]
        basic.close()


def test_health_is_open(keyed_server: Server) -> None:
    with keyed_server.client() as anon:
        assert anon.get("/healthz").json() == {"status": "ok"}
        assert anon.get("/readyz").status_code == 200


def test_openai_sdk_without_a_valid_key(keyed_server: Server) -> None:
    client = OpenAI(base_url=keyed_server.v1, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_scoped_key_sees_only_its_collections(keyed_server: Server) -> None:
    team = OpenAI(base_url=keyed_server.v1, api_key="team-key", max_retries=0)
    admin = OpenAI(base_url=keyed_server.v1, api_key="admin-key", max_retries=0)
    assert [m.id for m in team.models.list().data] == ["team"]
    assert {m.id for m in admin.models.list().data} >= {"team", "secret"}

    ok = team.chat.completions.create(
        model="team", messages=[{"role": "user", "content": "How do I rotate TLS certificates?"}]
    )
    assert (ok.model_extra or {})["citations"][0]["source"] == "team/tls.md"

    with pytest.raises(openai.NotFoundError) as hidden:
        team.chat.completions.create(
            model="secret", messages=[{"role": "user", "content": "coffee?"}]
        )
    with pytest.raises(openai.NotFoundError) as missing:
        team.chat.completions.create(
            model="nonexistent", messages=[{"role": "user", "content": "coffee?"}]
        )
    # Same message shape for hidden and missing: existence does not leak.
    assert str(hidden.value.message).replace("secret", "X") == str(
        missing.value.message
    ).replace("nonexistent", "X")


def test_scoped_key_on_every_collection_route(keyed_server: Server) -> None:
    with keyed_server.client("team-key") as team, keyed_server.client("admin-key") as admin:
        mine = team.post("/v1/search", json={"collection": "team", "query": "tls"})
        assert mine.status_code == 200
        assert team.post("/v1/search",
                         json={"collection": "secret", "query": "x"}).status_code == 404
        assert team.get("/v1/collections/secret/documents").status_code == 404
        assert team.delete("/v1/collections/secret").status_code == 404
        assert team.delete("/v1/collections/secret/documents",
                           params={"source": "secret/coffee.txt"}).status_code == 404
        assert team.post("/v1/collections/secret/documents",
                         files={"files": ("a.txt", b"a")}).status_code == 404
        assert [c["name"] for c in team.get("/v1/collections").json()["data"]] == ["team"]
        assert team.post("/v1/collections", json={"name": "elsewhere"}).status_code == 403
        # Metrics name no collection but cover all of them: admin only.
        assert team.get("/metrics").status_code == 403
        assert admin.get("/metrics").status_code == 200

        # A job in a collection the key cannot see is as missing as a wrong id.
        job = admin.post("/v1/collections/secret/documents",
                         files={"files": ("more.txt", b"More about the espresso grinder.")})
        assert job.status_code == 202
        assert team.get(f"/v1/jobs/{job.json()['id']}").status_code == 404
        assert admin.get(f"/v1/jobs/{job.json()['id']}").status_code == 200
