"""The chat page at ``/``: served files, then a real headless Chromium (Debian's
``chromium``, driven by Playwright) against the real server: ask with a streamed
answer, citation cards with thumbnails and OCR boxes, image questions (chosen and
pasted), uploads with per-file progress, and the API-key prompt.

Screenshots land in each test's tmp dir (CI keeps them as artifacts).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import INVOICE_TEXT, Server, text_png

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ASSETS = ("/", "/static/app.js", "/static/app.css")
HOOKS = ("collection", "question", "image-input", "send", "upload-input", "upload-progress")


def test_page_and_assets_ship_with_the_package(http: httpx.Client) -> None:
    page = http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for hook in HOOKS:
        assert f'data-testid="{hook}"' in page.text, hook
    assert '<select id="collection" data-testid="collection"' in page.text
    for path in ASSETS[1:]:
        r = http.get(path)
        assert r.status_code == 200, path
        # No CDN: nothing the page loads comes from elsewhere.
        assert not re.search(r"""(src|href)=["']?https?://""", r.text)
    assert not re.search(r"""(src|href)=["']https?://""", page.text)
    assert http.get("/static/nope.js").status_code == 404


def test_page_is_public_but_the_api_is_not(keyed_server: Server) -> None:
    with keyed_server.client() as client:
        assert client.get("/").status_code == 200
        assert client.get("/static/app.js").status_code == 200
        assert client.get("/v1/collections").status_code == 401


# --------------------------------------------------------------------------- browser

browser_test = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make browser installs it)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(60_000)
    yield pg
    context.close()
    assert not errors, errors


def _wait_answer(page: Any, n: int = 1) -> Any:
    answer = page.get_by_test_id("answer").nth(n - 1)
    answer.wait_for()
    page.wait_for_function(
        "n => { const a = document.querySelectorAll('[data-testid=answer]')[n - 1];"
        " return a && a.getAttribute('aria-busy') === 'false'; }", arg=n)
    return answer


def _thumbnails_loaded(page: Any) -> None:
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=citation] img')]"
        ".every(i => i.complete && i.naturalWidth > 0)")


@pytest.mark.slow
@browser_test
def test_ask_streams_and_shows_citation_cards(server: Server, page: Any, tmp_path: Path) -> None:
    page.goto(server.url + "/")
    select = page.get_by_test_id("collection")
    page.wait_for_function("() => document.querySelector('[data-testid=collection]').options"
                           ".length > 0 && document.querySelector('[data-testid=collection]')"
                           ".options[0].value !== ''")
    select.select_option("kb")
    question = page.get_by_test_id("question")
    question.fill("Where does parcel 4471 ship from?")
    question.press("Enter")  # the keyboard sends
    answer = _wait_answer(page)
    assert "Rotterdam" in answer.inner_text()
    metrics = page.evaluate("window.mmragMetrics")
    assert metrics["deltas"] >= 2  # arrived in pieces, not in one response
    assert 0 < metrics["firstTokenMs"] <= metrics["totalMs"]

    cards = page.get_by_test_id("citation")
    assert cards.count() >= 1
    invoice = cards.filter(has_text="invoice.png")
    assert invoice.count() == 1
    _thumbnails_loaded(page)
    thumb = invoice.locator("img")
    assert thumb.evaluate("i => i.naturalWidth") <= 384
    box = invoice.locator(".box")
    assert box.is_visible()  # the OCR box of the cited line, drawn over the thumbnail
    inner = box.bounding_box()
    outer = thumb.bounding_box()
    assert inner and outer and inner["width"] < outer["width"]
    assert outer["x"] <= inner["x"]
    assert inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 1
    # [n] markers link to their cards.
    assert answer.locator("a[href^='#cite-']").count() >= 1
    page.screenshot(path=str(tmp_path / "chat-answer.png"), full_page=True)

    # Keyboard: the card opens the full image; Escape closes it.
    invoice.locator("button").focus()
    page.keyboard.press("Enter")
    viewer = page.locator("#viewer")
    viewer.wait_for(state="visible")
    page.wait_for_function("() => document.getElementById('viewer-img').naturalWidth > 360")
    assert page.locator("#viewer .box").is_visible()
    page.screenshot(path=str(tmp_path / "chat-viewer.png"))
    page.keyboard.press("Escape")
    viewer.wait_for(state="hidden")

    # A follow-up keeps the conversation; the page stays usable on a phone-sized screen.
    page.set_viewport_size({"width": 390, "height": 844})
    question.fill("and the hydraulic press?")
    page.get_by_test_id("send").click()
    second = _wait_answer(page, 2)
    assert "press" in second.inner_text().lower()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(tmp_path / "chat-phone.png"), full_page=True)
    assert (tmp_path / "chat-answer.png").stat().st_size > 10_000


@pytest.mark.slow
@browser_test
def test_image_questions_chosen_and_pasted(server: Server, page: Any, tmp_path: Path) -> None:
    png = tmp_path / "query.png"
    png.write_bytes(text_png(INVOICE_TEXT))
    page.goto(server.url + "/")
    page.wait_for_function("() => document.querySelector('[data-testid=collection]').value")
    page.get_by_test_id("collection").select_option("kb")
    page.get_by_test_id("image-input").set_input_files(str(png))
    page.locator("#image-preview").wait_for(state="visible")
    page.get_by_test_id("send").click()
    _wait_answer(page)
    assert page.get_by_test_id("citation").first.inner_text().count("invoice.png") == 1
    assert page.locator(".q img").count() == 1  # the asked-about image is shown in the log

    # Paste an image into the question box.
    page.evaluate(
        """async (b64) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], 'pasted.png', {type: 'image/png'}));
            const q = document.querySelector('[data-testid=question]');
            q.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true,
                                                          cancelable: true}));
        }""",
        __import__("base64").b64encode(png.read_bytes()).decode(),
    )
    page.locator("#image-preview").wait_for(state="visible")
    page.get_by_test_id("question").fill("which harbour?")
    page.get_by_test_id("question").press("Enter")
    answer = _wait_answer(page, 2)
    assert "Rotterdam" in answer.inner_text()
    assert page.locator("#image-preview").is_hidden()  # sent with the question, then cleared
    assert page.locator(".q img").count() == 2
    page.screenshot(path=str(tmp_path / "chat-image.png"), full_page=True)


@pytest.mark.slow
@browser_test
def test_upload_shows_per_file_progress(server: Server, page: Any, tmp_path: Path) -> None:
    notes = tmp_path / "boiler.txt"
    notes.write_text("The boiler in building C is serviced every October by Kessler & Sons.")
    scan = tmp_path / "badge.png"
    scan.write_bytes(text_png(["Visitor badge 2291", "valid until March"]))
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not really a pdf")
    page.goto(server.url + "/")
    page.locator("#upload summary").click()
    page.locator("#upload-collection").fill("web-uploads")
    page.get_by_test_id("upload-input").set_input_files([str(notes), str(scan), str(broken)])
    rows = page.get_by_test_id("upload-progress").locator("li")
    rows.nth(2).wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=upload-progress] li')]"
        ".every(li => ['added', 'failed', 'duplicate', 'unchanged', 'replaced']"
        ".includes(li.dataset.status))", timeout=120_000)
    statuses = rows.evaluate_all("rows => rows.map(r => r.dataset.status)")
    assert statuses == ["added", "added", "failed"]
    assert "broken.pdf" in rows.nth(2).inner_text() and "failed" in rows.nth(2).inner_text()
    assert rows.nth(0).locator("progress").evaluate("p => p.value") == 1
    assert page.evaluate("window.mmragMetrics.uploadEvents") >= 1  # from the job's stream
    # The new collection is offered and answers questions.
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=collection] "
                           "option')].some(o => o.value === 'web-uploads')")
    assert page.get_by_test_id("collection").input_value() == "web-uploads"
    page.get_by_test_id("question").fill("who services the boiler?")
    page.get_by_test_id("send").click()
    assert "Kessler" in _wait_answer(page).inner_text()
    page.screenshot(path=str(tmp_path / "chat-upload.png"), full_page=True)


@pytest.mark.slow
@browser_test
def test_api_key_prompt(keyed_server: Server, page: Any, tmp_path: Path) -> None:
    page.goto(keyed_server.url + "/")
    dialog = page.locator("#key-dialog")
    dialog.wait_for(state="visible")  # the first API call answered 401
    page.get_by_label("Key", exact=True).fill("wrong-key")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('key-reason').textContent"
                           ".includes('refused')")
    assert dialog.is_visible()
    page.screenshot(path=str(tmp_path / "chat-key.png"))
    page.get_by_label("Key", exact=True).fill("team-key")
    page.locator("#key-ok").click()
    dialog.wait_for(state="hidden")
    page.wait_for_function("() => document.querySelector('[data-testid=collection]').value")
    options = page.get_by_test_id("collection").locator("option")
    assert options.evaluate_all("os => os.map(o => o.value)") == ["team"]  # its scope only
    page.get_by_test_id("question").fill("how do I rotate TLS certificates?")
    page.get_by_test_id("send").click()
    assert "certctl" in _wait_answer(page).inner_text()
    # Kept in this tab only.
    assert page.evaluate("sessionStorage.getItem('mmrag.apiKey')") == "team-key"
    assert page.evaluate("localStorage.length") == 0
