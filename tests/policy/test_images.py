"""Query images: data URL decoding, file paths only where allowed, the SSRF guards of
URL fetching and its one deadline (against real slow servers on loopback)."""

from __future__ import annotations

import base64
import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy.images import (
    ImagePolicy,
    decode_data_url,
    fetch_pinned,
    host_allowed,
    is_public,
    load_image,
    query_image,
    resolve_public,
)
from rag.errors import BadInput, LimitExceeded, UnsupportedFile
from tests.api.conftest import COLLECTION, Server

POLICY = ImagePolicy(max_pixels=10_000_000, max_bytes=5_000_000, allowlist=("127.0.0.1",))


@pytest.mark.parametrize(
    "ip",
    ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "0.0.0.0",
     "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1",
     "100.64.0.1", "240.0.0.1",
     # 6to4 (2002::/16) wrapping loopback, private and metadata addresses
     "2002:7f00:1::", "2002:7f00:0001:0:0:0:0:1", "2002:a00:1::1", "2002:c0a8:101::",
     "2002:a9fe:a9fe::",
     # Teredo (2001::/32): server 65.54.227.120, client 127.0.0.1 / 10.0.0.1 (XOR-ed)
     "2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:0:4136:e378:8000:63bf:f5ff:fffe",
     # NAT64 well-known prefix wrapping loopback/private; local-use prefix
     "64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::8.8.8.8",
     "::127.0.0.1", "not-an-ip"],
)
def test_non_public_addresses(ip: str) -> None:
    assert not is_public(ip)


@pytest.mark.parametrize("ip", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
                                "2002:808:808::1", "64:ff9b::8.8.8.8", "::ffff:8.8.8.8"])
def test_public_addresses(ip: str) -> None:
    assert is_public(ip)


def test_allowlist_matching() -> None:
    allow = ("images.example.com", "*.cdn.example.org")
    assert host_allowed("images.example.com", allow)
    assert host_allowed("IMAGES.example.com.", allow)
    assert host_allowed("a.cdn.example.org", allow)
    assert not host_allowed("cdn.example.org.evil.com", allow)
    assert not host_allowed("evilimages.example.com", allow)
    assert not host_allowed("example.com", allow)


def test_localhost_resolves_to_loopback_and_is_refused() -> None:
    with pytest.raises(BadInput, match="loopback"):
        resolve_public("localhost", 80)


def bomb_png(side: int = 7874) -> bytes:
    """A blank PNG of ``side``² pixels (62 Mpx at the default): about 80 KB on the wire,
    ~190 MB as RGB once decoded."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (side, side), 255).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def test_a_62_megapixel_data_url_is_refused_from_its_header_in_milliseconds() -> None:
    import time

    from policy.images import decode
    from rag.settings import load_settings

    data = bomb_png()
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    assert len(url) < 120_000
    policy = ImagePolicy.from_settings(load_settings("offline"))  # the shipped defaults
    start = time.perf_counter()
    with pytest.raises(LimitExceeded, match="api.max_image_pixels"):
        load_image(url, policy, "image")
    assert time.perf_counter() - start < 0.25
    # The ingest decoder checks the same header before decoding: an uploaded bomb over
    # ingest.max_pixels fails in milliseconds too.
    start = time.perf_counter()
    with pytest.raises(LimitExceeded, match="ingest.max_pixels"):
        decode(data, max_pixels=60_000_000)
    assert time.perf_counter() - start < 0.25


def test_data_url_limits() -> None:
    payload = base64.b64encode(b"\x00" * 3000).decode()
    with pytest.raises(LimitExceeded):
        decode_data_url(f"data:image/png;base64,{payload}", max_bytes=1000)
    with pytest.raises(UnsupportedFile):
        decode_data_url("data:image/svg+xml;base64,PHN2Zz4=", max_bytes=1000)
    assert decode_data_url("data:image/png;base64, aGVs\nbG8=", 1000) == b"hello"


@given(st.text(max_size=200))
def test_load_image_never_raises_anything_but_our_errors(url: str) -> None:
    policy = ImagePolicy(max_pixels=1000, max_bytes=1000, allowlist=())
    with contextlib.suppress(BadInput, LimitExceeded, UnsupportedFile):
        load_image(url, policy)


@pytest.mark.slow
def test_fetch_pinned_reads_from_the_vetted_address(server: Server) -> None:
    """The fetch itself, against our own server (a vetted public address cannot be
    reached from the test machine): Host header kept, size capped while streaming."""
    with server.client() as http:
        hit = http.post("/v1/search", json={
            "collection": COLLECTION, "query": "Rotterdam", "filter": {"modality": ["image"]},
        }).json()["hits"][0]
    port = server.url.rsplit(":", 1)[1]
    url = f"http://images.test:{port}{hit['media_url']}?size=64"
    data = fetch_pinned(url, "127.0.0.1", POLICY)
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    small = ImagePolicy(max_pixels=10_000_000, max_bytes=100)
    with pytest.raises(LimitExceeded):
        fetch_pinned(url, "127.0.0.1", small)
    with pytest.raises(BadInput, match="HTTP 404"):
        fetch_pinned(f"http://images.test:{port}/v1/media/ffffffffffffffff-p1", "127.0.0.1",
                     POLICY)


def test_fetch_gives_up_quickly() -> None:
    policy = ImagePolicy(max_pixels=1000, max_bytes=1000, timeout_s=0.2)
    # TEST-NET-1 (RFC 5737) never answers.
    with pytest.raises(BadInput, match="took longer than 0.2s|failed"):
        fetch_pinned("http://images.test/x.png", "192.0.2.1", policy)
    assert httpx  # the module the fetch uses; imported for type checkers


# --------------------------------------------------------------------------- one entry


def png(side: int = 40) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (side, side), "red").save(buf, format="PNG")
    return buf.getvalue()


def test_query_image_reads_paths_only_when_the_caller_allows_them(tmp_path: Path) -> None:
    path = tmp_path / "q.png"
    path.write_bytes(png())
    policy = ImagePolicy(max_pixels=10_000, max_bytes=100_000, max_file_bytes=100_000)
    assert query_image(None, policy) is None and query_image("  ", policy) is None
    image = query_image(str(path), policy, allow_paths=True)
    assert image is not None and image.size == (40, 40)
    with pytest.raises(BadInput, match="only read by the local \\(stdio\\) MCP server"):
        query_image(str(path), policy)
    with pytest.raises(BadInput, match="unsupported URL scheme 'file'"):
        query_image(f"file://{path}", policy, allow_paths=True)
    with pytest.raises(BadInput, match="cannot read"):
        query_image(str(tmp_path / "missing.png"), policy, allow_paths=True)
    small = ImagePolicy(max_pixels=10_000, max_bytes=100, max_file_bytes=100)
    with pytest.raises(LimitExceeded, match="ingest.max_file_bytes"):
        query_image(str(path), small, allow_paths=True)
    url = "data:image/png;base64," + base64.b64encode(png()).decode()
    assert query_image(url, policy) is not None  # the same data URL on every surface


# ------------------------------------------------------------- the fetch deadline


class Drip:
    """A real HTTP server on loopback that answers one byte at a time, every
    ``interval`` seconds, for ever: the headers (``headers=True``) or the body."""

    def __init__(self, headers: bool, interval: float = 0.1) -> None:
        self.headers = headers
        self.interval = interval
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.closed_at: list[float] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n"
                b"Content-Length: 1000000\r\nX-Pad: " + b"x" * 5000 + b"\r\n\r\n")
        with conn:
            conn.recv(65536)
            try:
                if not self.headers:
                    conn.sendall(head)
                    head = b"\x89" * 1_000_000
                for i in range(len(head)):
                    if self.stop.is_set():
                        return
                    conn.sendall(head[i : i + 1])
                    time.sleep(self.interval)
            except OSError:  # the client hung up: what the deadline should make it do
                self.closed_at.append(time.monotonic())

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture(params=["body", "headers"])
def drip(request: pytest.FixtureRequest) -> Iterator[Drip]:
    server = Drip(headers=request.param == "headers")
    yield server
    server.close()


def test_a_dripping_server_cannot_hold_a_fetch_past_its_deadline(drip: Drip) -> None:
    """A byte every 0.1 s never trips httpx's per-read timeout; the one deadline (1 s)
    ends the fetch, whether the headers or the body are dripping."""
    policy = ImagePolicy(max_pixels=1000, max_bytes=5_000_000, timeout_s=1.0)
    start = time.monotonic()
    with pytest.raises(BadInput, match="took longer than 1.0s"):
        fetch_pinned(f"http://images.test:{drip.port}/x.png", "127.0.0.1", policy)
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 2.0, elapsed
    # The connection is closed, not left dripping into a forgotten socket.
    deadline = time.monotonic() + 3
    while not drip.closed_at and time.monotonic() < deadline:
        time.sleep(0.05)
    assert drip.closed_at


def test_query_image_url_goes_through_the_same_deadline(
    drip: Drip, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole path a chat or search image URL takes: allow-list, address check
    (loopback allowed for this test only), pinned fetch, deadline."""
    import policy.images as images

    monkeypatch.setattr(images, "is_public", lambda ip: True)
    policy = ImagePolicy(max_pixels=1000, max_bytes=5_000_000, allowlist=("localhost",),
                         timeout_s=0.5)
    start = time.monotonic()
    with pytest.raises(BadInput, match="took longer than 0.5s"):
        query_image(f"http://localhost:{drip.port}/x.png", policy, "image_url")
    assert time.monotonic() - start < 1.5
