"""Videos over HTTP: times on search hits and chat citations, keyframes from
``/v1/media``, the original with HTTP Range, and MCP results with times and keyframes."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.api.conftest import Server, api_settings, serve
from tests.av_media import (
    ESPEAK,
    ESPEAK_MISSING,
    Shot,
    make_video,
    silence,
    slide,
    speech,
)
from tests.mcpserver.client import http_client, images, run, texts

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(ESPEAK is None, reason=ESPEAK_MISSING)]


@pytest.fixture(scope="module")
def av_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    said = np.concatenate([silence(4.5), speech("Rotate the certificates every ninety days."),
                           silence(1.0)])
    video = make_video([Shot(slide(["Release checklist"], font_size=40), 4.0),
                        Shot(slide(["Certificate rotation", "every ninety days"],
                                   font_size=40), len(said) / 16000 - 4.0)], audio=said)
    settings = api_settings(Path(tmp_path_factory.mktemp("av-api")))
    with serve(settings) as srv:
        srv.ingest("av", {"talks/ops.mp4": video})
        yield srv


def test_search_hits_carry_times_and_the_original_plays_by_ranges(av_server: Server) -> None:
    with av_server.client() as http:
        res = http.post("/v1/search", json={"collection": "av", "query": "certificate rotation",
                                            "limit": 5})
        assert res.status_code == 200, res.text
        hits = res.json()["hits"]
        frame = next(h for h in hits if h["modality"] == "frame")
        assert 3.9 <= frame["start"] <= 4.6 and frame["end"] > frame["start"]
        assert frame["original_url"].endswith("-orig")
        webp = http.get(frame["media_url"], params={"size": 384})
        assert webp.status_code == 200 and webp.headers["content-type"] == "image/webp"
        whole = http.get(frame["original_url"])
        assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
        assert whole.headers["accept-ranges"] == "bytes"
        part = http.get(frame["original_url"], headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206 and part.content == whole.content[100:1100]
        assert part.headers["content-range"] == f"bytes 100-1099/{len(whole.content)}"
        # Keys of originals are only those of stored documents.
        assert http.get("/v1/media/" + "ab" * 32 + "-orig").status_code == 404
        assert http.get("/v1/media/../../etc-orig").status_code == 404


def test_chat_citations_carry_the_time(av_server: Server) -> None:
    with av_server.client() as http:
        res = http.post("/v1/chat/completions", json={
            "model": "av", "messages": [{"role": "user",
                                         "content": "how often are certificates rotated?"}]})
        assert res.status_code == 200, res.text
        cites = res.json()["citations"]
        timed = [c for c in cites if c["start"] is not None]
        assert timed and all(c["original_url"] for c in timed)
        assert any(c["modality"] in ("frame", "transcript") for c in timed)


def test_mcp_search_gives_times_and_keyframes(av_server: Server) -> None:
    async def go() -> Any:
        async with http_client(av_server.url) as client:
            return await client.call_tool("search", {"collection": "av",
                                                     "query": "certificate rotation",
                                                     "images": True})

    result = run(go)
    text = texts(result)
    assert "talks/ops.mp4, at 0:04" in text
    assert images(result), "keyframes come back as image content"


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                    "(make browser installs it)")
def test_chat_page_card_shows_the_time_and_plays_from_it(av_server: Server,
                                                          tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page()
        page.set_default_timeout(60_000)
        ranges: list[str] = []
        page.on("request", lambda r: ranges.append(r.headers.get("range", ""))
                if r.url.endswith("-orig") else None)
        page.goto(av_server.url + "/")
        page.wait_for_function("() => [...document.querySelectorAll("
                               "'[data-testid=collection] option')].some(o => o.value === 'av')")
        page.get_by_test_id("collection").select_option("av")
        page.get_by_test_id("question").fill("how often are certificates rotated?")
        page.get_by_test_id("question").press("Enter")
        card = page.get_by_test_id("citation").filter(
            has=page.get_by_test_id("play")).first
        card.wait_for()
        play = card.get_by_test_id("play")
        assert re.fullmatch(r"▶ \d+:\d\d", play.inner_text())
        assert re.search(r"ops\.mp4, at \d+:\d\d", card.inner_text())
        play.click()
        player = card.get_by_test_id("player")
        player.wait_for()
        src = player.evaluate("v => v.src")
        assert re.search(r"/v1/media/[0-9a-f]{64}-orig#t=\d", src), src
        # Chromium asks for byte ranges; once it has the metadata it seeks to the cited
        # time (readyState >= 1 comes a moment before the seek, so wait for both).
        page.wait_for_function("() => { const v = document.querySelector('[data-testid=player]');"
                               " return v.error || (v.readyState >= 1 && !v.seeking"
                               " && v.currentTime > 0); }")
        state = player.evaluate("v => ({t: v.currentTime, err: v.error && v.error.code})")
        assert state["err"] is None, state
        start = float(src.rsplit("#t=", 1)[1])
        assert start > 0 and abs(state["t"] - start) < 1.0, state
        assert any(r.startswith("bytes=") for r in ranges), ranges
        page.screenshot(path=str(tmp_path / "av-card.png"), full_page=True)
        browser.close()
