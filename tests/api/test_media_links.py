"""Signed media links over HTTP, with API keys on: a ``<video>`` plays an original by
ranges without the Bearer header, and the link opens that one file and nothing else."""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from api.media_links import MediaLinks
from policy.principals import Authenticator
from rag.payload import original_key
from tests.api.conftest import Server, api_settings, serve, text_png
from tests.av_media import Shot, make_video, silence, slide

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
KEYS = {"admin-key": ["*"], "team-key": ["team"]}

pytestmark = pytest.mark.slow


def picture_key(srv: Server, key: str | None, collection: str) -> str:
    """The media key of the one picture in ``collection``, as search hits give it."""
    with srv.client(key) as http:
        res = http.post("/v1/search", json={"collection": collection, "query": "parcel"})
        assert res.status_code == 200, res.text
        found: str = res.json()["hits"][0]["media"]
    return found


class Seeded:
    def __init__(self, srv: Server, video: bytes) -> None:
        self.srv = srv
        self.video = video
        self.orig = original_key(hashlib.sha256(video).hexdigest())
        self.picture = picture_key(srv, "admin-key", "secret")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """``team`` holds a video, ``secret`` a picture; ``team-key`` sees only ``team``."""
    video = make_video([Shot(slide(["Release checklist"], font_size=40), 3.0),
                        Shot(slide(["Certificate rotation", "every ninety days"],
                                   font_size=40), 4.0)], audio=silence(7.0))
    picture = text_png(["Parcel 4471 ships", "from Rotterdam harbour"])
    settings = api_settings(Path(tmp_path_factory.mktemp("links")), api_keys=KEYS)
    with serve(settings) as srv:
        srv.ingest("team", {"talks/ops.mp4": video})
        srv.ingest("secret", {"scans/parcel.png": picture})
        yield Seeded(srv, video)


def sign(http: httpx.Client, key: str) -> dict[str, object]:
    res = http.post(f"/v1/media/{key}/url")
    assert res.status_code == 200, res.text
    body: dict[str, object] = res.json()
    return body


def error_code(res: httpx.Response) -> str:
    code: str = res.json()["error"]["code"]
    return code


def test_a_signed_link_plays_by_ranges_without_the_key(keyed: Seeded) -> None:
    srv = keyed.srv
    with srv.client("team-key") as http:
        before = time.time()
        link = sign(http, keyed.orig)
    url = str(link["url"])
    assert url.startswith(f"/v1/media/{keyed.orig}?"), "relative: same origin only"
    assert before + 590 <= int(str(link["expires_at"])) <= time.time() + 601
    assert "team-key" not in url
    with srv.client() as anon:  # no Authorization header at all
        assert anon.get(f"/v1/media/{keyed.orig}").status_code == 401
        whole = anon.get(url)
        assert whole.status_code == 200 and whole.content == keyed.video
        assert whole.headers["content-type"] == "video/mp4"
        assert whole.headers["cache-control"] == "private, no-store"
        assert whole.headers["referrer-policy"] == "no-referrer"
        part = anon.get(url, headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206 and part.content == keyed.video[100:1100]
        assert part.headers["content-range"] == f"bytes 100-1099/{len(keyed.video)}"
    # The plain keyed read is unchanged: long-lived, private cache.
    with srv.client("team-key") as http:
        plain = http.get(f"/v1/media/{keyed.orig}", headers={"Range": "bytes=0-9"})
        assert plain.status_code == 206
        assert plain.headers["cache-control"] == "private, max-age=31536000, immutable"


def test_changed_foreign_and_expired_links_are_refused(keyed: Seeded) -> None:
    srv = keyed.srv
    with srv.client("team-key") as http:
        url = str(sign(http, keyed.orig)["url"])
    path, query = url.split("?")
    good = dict(parse_qsl(query))
    sig = good["sig"]
    # An expired link, signed as another replica with the same keys would sign it.
    team = Authenticator(srv.settings.api).by_key_id(good["kid"])[0]
    old = MediaLinks(600, clock=lambda: time.time() - 3600).issue(keyed.orig, team)
    with srv.client() as anon:
        for params, status, code in [
            ({**good, "sig": sig[::-1]}, 403, "media_link_invalid"),
            ({**good, "exp": str(int(good["exp"]) + 86400)}, 403, "media_link_invalid"),
            ({**good, "kid": "0000beef"}, 403, "media_link_invalid"),
            ({"exp": good["exp"], "kid": good["kid"]}, 400, "bad_input"),
            (dict(parse_qsl(old.query)), 403, "media_link_expired"),
        ]:
            res = anon.get(path, params=params, headers={"Range": "bytes=0-9"})
            assert res.status_code == status, (params, res.text)
            assert error_code(res) == code and res.json()["error"]["message"]
        # Another file with this file's signature: the secret picture, and the
        # picture's thumbnail route.
        for other in (keyed.picture, "ab" * 32 + "-orig"):
            res = anon.get(f"/v1/media/{other}", params=good)
            assert res.status_code == 403 and error_code(res) == "media_link_invalid"
        # Other routes ignore the link: they still want the key.
        assert anon.get("/v1/collections", params=good).status_code == 401
        assert anon.get("/v1/models", params=good).status_code == 401
        assert anon.post(f"/v1/media/{keyed.orig}/url", params=good).status_code == 401
        assert anon.delete("/v1/collections/team/documents",
                           params={**good, "source": "talks/ops.mp4"}).status_code == 401
        # The link plays the original, not a write: it still works after all that.
        assert anon.get(url, headers={"Range": "bytes=0-9"}).status_code == 206


def test_a_key_gets_links_only_for_media_it_may_see(keyed: Seeded) -> None:
    srv = keyed.srv
    with srv.client("team-key") as team, srv.client("admin-key") as admin, \
            srv.client() as anon:
        for key in (keyed.picture, "ab" * 32 + "-orig", "../../etc-orig"):
            res = team.post(f"/v1/media/{key}/url")
            assert res.status_code == 404, res.text
        assert admin.post("/v1/media/" + "ab" * 32 + "-orig/url").status_code == 404
        assert anon.post(f"/v1/media/{keyed.orig}/url").status_code == 401
        assert anon.post(f"/v1/media/{keyed.orig}/url",
                         headers={"Authorization": "Bearer wrong"}).status_code == 401
        # The admin's link to the picture serves it, thumbnails included.
        url = str(sign(admin, keyed.picture)["url"])
        res = anon.get(url + "&size=128")
        assert res.status_code == 200 and res.headers["content-type"] == "image/webp"
        # A cross-site page cannot mint one with the user's browser (it is a write).
        res = team.post(f"/v1/media/{keyed.orig}/url",
                        headers={"Origin": "https://evil.example",
                                 "Sec-Fetch-Site": "cross-site"})
        assert res.status_code == 403 and error_code(res) == "cross_site_request"


def test_without_keys_links_work_and_plain_urls_are_unchanged(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    with serve(api_settings(Path(tmp_path_factory.mktemp("open-links")))) as srv:
        srv.ingest("kb", {"scans/parcel.png": text_png(["Parcel 4471 ships"])})
        key = picture_key(srv, None, "kb")
        with srv.client() as http:
            plain = http.get(f"/v1/media/{key}")
            assert plain.status_code == 200
            assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
            link = sign(http, key)
            assert "kid=" not in str(link["url"])
            signed = http.get(str(link["url"]))
            assert signed.status_code == 200 and signed.content == plain.content
            assert signed.headers["cache-control"] == "private, no-store"


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                    "(make browser installs it)")
def test_chat_page_with_a_key_streams_the_cited_moment_and_renews_the_link(
        keyed: Seeded, tmp_path: Path) -> None:
    from playwright.sync_api import Route, sync_playwright
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.add_init_script("sessionStorage.setItem('mmrag.apiKey', 'team-key')")
        originals: list[tuple[str, str, str]] = []
        page.on("request", lambda r: originals.append(
            (r.url, r.headers.get("range", ""), r.headers.get("authorization", "")))
            if "-orig?" in r.url else None)
        # The first link "expires" before the element's first request (answered as the
        # server answers an expired link): the page must get a new one and play on.
        refused: list[str] = []

        def expire_first(route: Route) -> None:
            if refused:
                route.continue_()
                return
            refused.append(route.request.url)
            route.fulfill(status=403, content_type="application/json",
                          body='{"error": {"message": "expired", "type": "permission_error",'
                               ' "code": "media_link_expired", "param": null}}')

        page.route(re.compile(r".*-orig\?.*"), expire_first)
        links: list[str] = []
        page.on("request", lambda r: links.append(r.url) if r.url.endswith("/url") else None)
        page.goto(keyed.srv.url + "/")
        page.wait_for_function("() => [...document.querySelectorAll("
                               "'[data-testid=collection] option')].some(o => o.value === 'team')")
        page.get_by_test_id("collection").select_option("team")
        page.get_by_test_id("question").fill("how often are certificates rotated?")
        page.get_by_test_id("question").press("Enter")
        card = page.get_by_test_id("citation").filter(has=page.get_by_test_id("play")).first
        card.wait_for()
        card.get_by_test_id("play").click()
        player = card.get_by_test_id("player")
        player.wait_for()
        # Wait for the element to stand at the cited moment from the renewed link. The
        # first link's error is transient (the page renews it), so an error cannot end
        # the wait; if it never gets there, the asserts below say what state it is in.
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_function(
                "() => { const v = document.querySelector('[data-testid=player]');"
                " return v && v.src && !v.error && v.readyState >= 1 && !v.seeking"
                " && v.currentTime > 0; }", timeout=30_000)
        src = player.evaluate("v => v.src")
        assert re.search(r"/v1/media/[0-9a-f]{64}-orig\?exp=\d+&kid=[0-9a-f]+&sig=[\w-]+#t=\d",
                         src), src
        assert not src.startswith("blob:"), "streamed, not downloaded first"
        state = player.evaluate("v => ({t: v.currentTime, err: v.error && v.error.code})")
        assert state["err"] is None, state
        assert len(refused) == 1 and len(links) == 2, (refused, links)  # renewed once
        start = float(src.rsplit("#t=", 1)[1])
        assert start > 0 and abs(state["t"] - start) < 1.0, state
        assert any(rng.startswith("bytes=") for _, rng, _ in originals), originals
        assert all(auth == "" for _, _, auth in originals), "the element sends no key"
        assert all(urlsplit(u).netloc == urlsplit(keyed.srv.url).netloc for u, _, _ in originals)
        page.screenshot(path=str(tmp_path / "keyed-card.png"), full_page=True)
        browser.close()
