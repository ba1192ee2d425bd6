"""Bad input gets a clear 4xx in OpenAI's error shape, never a 500."""

from __future__ import annotations

import io
import time
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.api.conftest import COLLECTION, MAX_PIXELS, Server, data_url, raw_request

# Real uvicorn servers on loopback: the slow tier (make test-slow).
pytestmark = pytest.mark.slow

def ask(http: httpx.Client, content: Any, **extra: Any) -> httpx.Response:
    body = {"model": COLLECTION, "messages": [{"role": "user", "content": content}], **extra}
    return http.post("/v1/chat/completions", json=body)


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def error(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "code"} <= set(body["error"])
    return dict(body["error"])


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 255).save(buf, format="PNG")
    return buf.getvalue()


def test_too_many_pixels_in_an_image_part(http: httpx.Client) -> None:
    side = int(MAX_PIXELS**0.5) + 100
    r = ask(http, [{"type": "text", "text": "what is this?"},
                   image_part(data_url(png(side, side)))])
    assert r.status_code == 413
    assert "ingest.max_pixels" in error(r)["message"]
    search = http.post("/v1/search", json={"collection": COLLECTION,
                                           "image": data_url(png(side, side))})
    assert search.status_code == 413


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://127.0.0.1:9/x.png", "loopback"),
        ("http://localhost/x.png", "loopback"),
        ("http://10.1.2.3/x.png", "allowlist"),
        ("http://169.254.169.254/latest/meta-data", "allowlist"),
        ("https://user:pw@images.example.invalid/x.png", "credentials"),
        ("file:///etc/passwd", "scheme"),
        ("ftp://example.com/x.png", "scheme"),
    ],
)
def test_image_urls_that_are_never_fetched(http: httpx.Client, url: str, needle: str) -> None:
    r = ask(http, [{"type": "text", "text": "what is this?"}, image_part(url)])
    assert r.status_code == 400, r.text
    assert needle in error(r)["message"]


def test_bad_data_urls(http: httpx.Client) -> None:
    assert ask(http, [image_part("data:text/plain;base64,aGVsbG8=")]).status_code == 415
    assert ask(http, [image_part("data:image/png;base64,@@@not-base64@@@")]).status_code == 400
    assert ask(http, [image_part("data:image/png,rawbytes")]).status_code == 400
    corrupt = data_url(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    r = ask(http, [image_part(corrupt)])
    assert r.status_code == 422 and "corrupt" in error(r)["message"]
    # Declared PNG, actually text: decided by content, not by the declared type.
    assert ask(http, [image_part("data:image/png;base64,aGVsbG8gd29ybGQ=")]).status_code == 415


def test_conversation_shape_errors(http: httpx.Client) -> None:
    two = [image_part(data_url(png(20, 20))), image_part(data_url(png(20, 20)))]
    assert ask(http, two).status_code == 400
    empty = ask(http, "   ")
    assert empty.status_code == 400
    last_assistant = http.post("/v1/chat/completions", json={
        "model": COLLECTION,
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
    })
    assert last_assistant.status_code == 400
    assert "last message" in error(last_assistant)["message"]


def test_bad_json_is_400_and_bad_shape_is_422(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", content=b"{not json",
                  headers={"content-type": "application/json"})
    assert r.status_code == 400 and error(r)["code"] == "invalid_json"
    r = http.post("/v1/chat/completions", json={"model": COLLECTION})
    assert r.status_code == 422
    assert "messages" in error(r)["message"] and error(r)["param"] == "messages"
    r = http.post("/v1/chat/completions", json={"model": COLLECTION, "messages": []})
    assert r.status_code == 422
    r = http.post("/v1/search", json={"collection": COLLECTION, "query": "x", "limt": 3})
    assert r.status_code == 422 and "limt" in error(r)["message"]
    r = http.post("/v1/search", json={"collection": COLLECTION, "query": "x", "limit": 0})
    assert r.status_code == 422
    r = http.post("/v1/search", json={"collection": COLLECTION})
    assert r.status_code == 400
    r = http.post("/v1/search", json={"collection": COLLECTION, "query": "x",
                                      "filter": {"modality": ["video"]}})
    assert r.status_code == 422


def test_unknown_collection_is_404_everywhere(http: httpx.Client) -> None:
    for r in (
        http.post("/v1/search", json={"collection": "nope", "query": "x"}),
        http.get("/v1/collections/nope/documents"),
        http.delete("/v1/collections/nope/documents", params={"source": "a"}),
        http.delete("/v1/collections/nope"),
        http.get("/v1/models/nope"),
        http.post(
            "/v1/chat/completions",
            json={"model": "nope", "messages": [{"role": "user", "content": "hi"}],
                  "stream": True},
        ),
    ):
        assert r.status_code == 404, (r.request.url, r.text)
        assert error(r)["type"] == "not_found_error"


def test_unknown_route_and_method(http: httpx.Client) -> None:
    r = http.get("/v1/nothing-here")
    assert r.status_code == 404 and error(r)["type"] == "not_found_error"
    r = http.put("/v1/search")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert error(r)["code"] == "method_not_allowed"
    # Two routes share this path: Allow lists the methods of both.
    r = http.put("/v1/collections")
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "POST"}
    r = http.patch(f"/v1/collections/{COLLECTION}/documents")
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "POST", "DELETE"}


def test_decompression_bomb_data_url_is_413_in_milliseconds(http: httpx.Client) -> None:
    """An ~80 KB PNG that declares 62 megapixels: refused from its header, never decoded."""
    buf = io.BytesIO()
    Image.new("L", (7874, 7874), 255).save(buf, format="PNG", optimize=True)
    url = data_url(buf.getvalue())
    for _ in range(3):
        start = time.perf_counter()
        r = ask(http, [{"type": "text", "text": "what is this?"}, image_part(url)])
        elapsed = time.perf_counter() - start
        assert r.status_code == 413 and "pixels" in error(r)["message"]
        assert elapsed < 0.5, f"{elapsed:.3f}s"
        r = http.post("/v1/search", json={"collection": COLLECTION, "image": url})
        assert r.status_code == 413


def test_huge_json_body_is_413(server: Server) -> None:
    status, body = raw_request(
        server,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {10**10}\r\n\r\n{{",
    )
    assert status == 413 and "limit_exceeded" in body


GARBAGE: list[Any] = [
    None, 1, "x", [], {}, {"model": None}, {"model": COLLECTION, "messages": "hi"},
    {"model": COLLECTION, "messages": [{"role": "wizard", "content": "x"}]},
    {"model": COLLECTION, "messages": [{"role": "user", "content": [{"type": "audio"}]}]},
    {"model": COLLECTION, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
    {"model": COLLECTION, "messages": [{"role": "user", "content": 5}]},
    {"model": COLLECTION, "messages": [{"role": "user", "content": "x"}], "limit": "many"},
    {"model": ["x"], "messages": [{"role": "user", "content": "x"}]},
    {"collection": COLLECTION, "image": "not a url"},
    {"collection": COLLECTION, "query": "x", "filter": {"metadata": {"a": [1]}}},
    {"collection": "../../etc", "query": "x"},
    {"name": ""}, {"name": "../x"}, {"name": "a" * 300},
]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/search", "/v1/collections"])
def test_garbage_never_500(http: httpx.Client, path: str) -> None:
    for body in GARBAGE:
        r = http.post(path, json=body)
        assert 400 <= r.status_code < 500, (path, body, r.status_code, r.text)
        error(r)
    r = http.post(path, content=b"\xff\xfe\x00", headers={"content-type": "application/json"})
    assert r.status_code == 400
