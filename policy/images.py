"""Query images: the picture a caller searches or asks with, loaded the same way on
every surface (chat ``image_url`` parts, the search ``image`` field, MCP's ``image``
argument), through one entry point, :func:`query_image`.

Three ways in, all bounded:

- ``data:`` URLs (PNG, JPEG, WebP, GIF): size-checked before base64 decoding, then
  decoded by the ingest loader, which checks the pixel count from the image header
  before decoding any pixel data: a query image may have at most
  ``api.max_image_pixels`` (and never more than ``ingest.max_pixels``), so an 80 KB PNG
  that claims 62 megapixels is refused in milliseconds, not after a gigabyte of RAM.
- ``http(s)`` URLs, only for hosts in ``api.image_url_allowlist``. Fetching URLs on a
  client's behalf is a classic SSRF hole, so: every address the host resolves to must be
  public (no private, loopback, link-local, reserved or multicast address, checked for
  each resolved IP, and for the IPv4 address an IPv6 one wraps: mapped, 6to4, Teredo,
  NAT64); the request then goes to the address
  that was checked (the host name is only sent as ``Host``/SNI), so a DNS answer that
  changes between check and connect (rebinding) cannot redirect it; redirects are not
  followed; proxies from the environment are ignored; the body is capped while it
  streams; and the whole fetch has **one** deadline (:data:`FETCH_TIMEOUT_S`):
  httpx's timeouts are per operation, so a server that drips a byte a second would
  otherwise keep a fetch (and a server thread) alive for ever.
- file paths, only where the caller says so (``allow_paths``: the stdio MCP server,
  whose caller is the local user); they are bounded like an ingested file
  (``ingest.max_file_bytes``, ``ingest.max_pixels``), as the CLI's ``--image`` is.

Anything else is a :class:`~rag.errors.BadInput` that says how to send the image instead.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import ipaddress
import re
import socket
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from pipeline.inputs import decode_image, magic_mime
from rag.errors import BadInput, LimitExceeded, UnsupportedFile
from rag.settings import Settings

if TYPE_CHECKING:
    from PIL import Image

ALLOWED_MIMES = ("image/png", "image/jpeg", "image/webp", "image/gif")
FETCH_TIMEOUT_S = 5.0
FETCH_MAX_BYTES = 20 * 1024 * 1024
_HINT = "send the image inline as a data URL (data:image/png;base64,...)"
# A URL scheme: two or more characters before the colon (one letter is a Windows drive).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


@dataclass(frozen=True)
class ImagePolicy:
    """The limits that apply to one client image."""

    max_pixels: int
    max_bytes: int
    allowlist: tuple[str, ...] = ()
    timeout_s: float = FETCH_TIMEOUT_S
    ingest_max_pixels: int = 0
    max_file_bytes: int = 0  # for file paths; 0: max_bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> ImagePolicy:
        return cls(
            max_pixels=min(settings.ingest.max_pixels, settings.api.max_image_pixels),
            ingest_max_pixels=settings.ingest.max_pixels,
            max_bytes=min(settings.api.max_upload_bytes, FETCH_MAX_BYTES),
            allowlist=tuple(h.lower().strip() for h in settings.api.image_url_allowlist),
            max_file_bytes=settings.ingest.max_file_bytes,
        )


def query_image(
    value: str | None, policy: ImagePolicy, name: str = "image", *, allow_paths: bool = False
) -> Image.Image | None:
    """The query image ``value`` names (a data URL, an allow-listed http(s) URL, or, with
    ``allow_paths``, a file on this machine) as RGB; None when there is none."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    match = _SCHEME.match(value)
    scheme = match.group(1).lower() if match else ""
    if scheme in ("data", "http", "https"):
        return load_image(value, policy, name)
    if scheme:
        raise BadInput(f"{name}: unsupported URL scheme {scheme!r}; {_HINT}")
    if allow_paths:
        return read_path(value, policy, name)
    raise BadInput(
        f"{name}: {value[:100]!r} is not a data URL; file paths are only read by the local "
        f"(stdio) MCP server; {_HINT}"
    )


def read_path(value: str, policy: ImagePolicy, name: str = "image") -> Image.Image:
    """A query image from a file on this machine, bounded like an ingested file."""
    path = Path(value).expanduser()
    limit = policy.max_file_bytes or policy.max_bytes
    try:
        size = path.stat().st_size
        if size > limit:
            raise LimitExceeded(f"{name}: {value} is {size:,} bytes, over the {limit:,} byte "
                                "limit (ingest.max_file_bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{name}: cannot read {value} ({exc.strerror or exc})") from None
    return decode(data, policy.ingest_max_pixels or policy.max_pixels, str(path))


def load_image(url: str, policy: ImagePolicy, name: str = "image_url") -> Image.Image:
    """A client image URL as an RGB image, or a typed error saying what was wrong."""
    url = url.strip()
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        data = decode_data_url(url, policy.max_bytes, name)
    elif scheme in ("http", "https"):
        data = fetch_image(url, policy, name)
    else:
        raise BadInput(f"{name}: unsupported URL scheme {scheme or '(none)'!r}; {_HINT}")
    check_pixels(data, policy.max_pixels, name)
    return decode(data, policy.ingest_max_pixels or policy.max_pixels, name)


def check_pixels(data: bytes, max_pixels: int, name: str = "image") -> None:
    """Refuse a query image over ``api.max_image_pixels`` from its header alone (Pillow's
    ``open`` is lazy: no pixel is decoded), so a small file that claims 62 megapixels
    costs microseconds. Unreadable headers are left to :func:`decode` to report."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            width, height = Image.open(io.BytesIO(data)).size
    except Image.DecompressionBombError:
        width = height = max_pixels + 1
    except Exception:
        return
    if width * height > max_pixels:
        raise LimitExceeded(
            f"{name}: the image is {width}x{height} = {width * height:,} pixels; query "
            f"images may have at most {max_pixels:,} (api.max_image_pixels, capped by "
            "ingest.max_pixels): scale it down"
        )


def decode(data: bytes, max_pixels: int, name: str = "image") -> Image.Image:
    """Decode by content (magic bytes), never by what the client claimed the type was."""
    mime = magic_mime(data)
    if mime not in ALLOWED_MIMES:
        raise UnsupportedFile(f"{name}: not a PNG, JPEG, WebP or GIF image")
    return decode_image(name, data, mime, max_pixels)


def decode_data_url(url: str, max_bytes: int, name: str = "image_url") -> bytes:
    header, sep, payload = url.partition(",")
    if not sep:
        raise BadInput(f"{name}: malformed data URL (no comma); expected {_HINT}")
    params = [p.strip().lower() for p in header[len("data:") :].split(";")]
    mime, flags = params[0], params[1:]
    if mime not in ALLOWED_MIMES:
        raise UnsupportedFile(
            f"{name}: data URL type {mime or '(none)'!r} is not supported; use "
            + ", ".join(ALLOWED_MIMES)
        )
    if "base64" not in flags:
        raise BadInput(f"{name}: data URL must be base64-encoded (';base64,')")
    payload = "".join(payload.split())
    if len(payload) * 3 // 4 > max_bytes:
        raise LimitExceeded(
            f"{name}: the image is about {len(payload) * 3 // 4:,} bytes; the limit is "
            f"{max_bytes:,}"
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInput(f"{name}: the data URL is not valid base64 ({exc})") from None


def host_allowed(host: str, allowlist: tuple[str, ...]) -> bool:
    """Exact host match, or ``*.example.com`` for its subdomains."""
    host = host.lower().rstrip(".")
    for entry in allowlist:
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
        if host == entry:
            return True
    return False


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"),)
# RFC 8215 local-use NAT64: a private translator, IPv4 embedded at a site-chosen offset.
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


def embedded_ipv4(addr: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and routes to: IPv4-mapped
    (``::ffff:a.b.c.d``), 6to4 (``2002:AABB:CCDD::/48``), Teredo (``2001::/32``: its
    server and its XOR-obfuscated client) and well-known NAT64 (``64:ff9b::/96``: the
    last 32 bits). ``2002:7f00:1::`` reaches 127.0.0.1 through a 6to4 relay, so an
    address is only as public as what it wraps."""
    out: list[ipaddress.IPv4Address] = []
    if addr.ipv4_mapped is not None:
        out.append(addr.ipv4_mapped)
    if addr.sixtofour is not None:
        out.append(addr.sixtofour)
    if addr.teredo is not None:
        out.extend(addr.teredo)
    if any(addr in net for net in _NAT64):
        out.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return out


def _global(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or not addr.is_global
    )


def is_public(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        if addr in _LOCAL_NAT64:
            return False
        wrapped = embedded_ipv4(addr)
        if addr.ipv4_mapped is not None or any(addr in net for net in _NAT64):
            # Only the IPv4 address matters (DNS64 synthesises these for IPv4-only hosts;
            # Python files 64:ff9b::/96 under the reserved ::/8).
            return _global(wrapped[-1])
        if wrapped and not all(_global(v4) for v4 in wrapped):
            return False
    return _global(addr)


def resolve_public(host: str, port: int, name: str = "image_url") -> list[str]:
    """Every address of ``host``, refusing the lot if any one of them is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise BadInput(f"{name}: cannot resolve host {host!r} ({exc})") from None
    ips = sorted({str(info[4][0]) for info in infos})
    if not ips:
        raise BadInput(f"{name}: host {host!r} has no addresses")
    for ip in ips:
        if not is_public(ip):
            raise BadInput(
                f"{name}: host {host!r} resolves to {ip}, a private, loopback or "
                "link-local address; such URLs are never fetched"
            )
    return ips


def fetch_image(url: str, policy: ImagePolicy, name: str = "image_url") -> bytes:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.username or parts.password:
        raise BadInput(f"{name}: URLs with credentials are not fetched")
    if not host or not host_allowed(host, policy.allowlist):
        raise BadInput(
            f"{name}: host {host or '(none)'!r} is not in api.image_url_allowlist; {_HINT}"
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BadInput(f"{name}: invalid port in URL") from None
    ip = resolve_public(host, port, name)[0]
    return fetch_pinned(url, ip, policy, name)


def fetch_pinned(url: str, ip: str, policy: ImagePolicy, name: str = "image_url") -> bytes:
    """GET ``url`` from exactly ``ip`` (already vetted), sending the real host name as
    ``Host`` and TLS SNI so virtual hosting and certificate checks still work.

    The whole fetch, connect to last byte, ends by one monotonic deadline. httpx only
    bounds each operation (a read that waits, not a body that trickles), so: each
    operation gets the time left as its own timeout, the read loop checks the deadline
    after every chunk, and a watchdog shuts the socket down at the deadline, which also
    ends a read that is blocked or a response whose headers trickle in a byte at a time.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{ip}]" if ":" in ip else ip
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = f"{host}:{parts.port}" if parts.port else host
    deadline = _Deadline(policy.timeout_s)
    try:
        with (
            httpx.Client(
                timeout=deadline.left(), follow_redirects=False, trust_env=False
            ) as client,
            client.stream(
                "GET",
                pinned,
                headers={"Host": host_header, "Accept": "image/*"},
                extensions={"sni_hostname": host, "trace": deadline.trace},
                timeout=deadline.left(),
            ) as response,
        ):
            if response.status_code != 200:
                raise BadInput(f"{name}: fetching the image gave HTTP {response.status_code}")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > policy.max_bytes:
                raise LimitExceeded(
                    f"{name}: the image is {int(declared):,} bytes; the limit is "
                    f"{policy.max_bytes:,}"
                )
            body = bytearray()
            for chunk in response.iter_bytes():
                deadline.check()
                body.extend(chunk)
                if len(body) > policy.max_bytes:
                    raise LimitExceeded(
                        f"{name}: the image is over the {policy.max_bytes:,} byte limit"
                    )
            deadline.check()
            return bytes(body)
    except (httpx.TimeoutException, _Expired):
        raise BadInput(f"{name}: fetching the image took longer than {policy.timeout_s}s; "
                       f"{_HINT}") from None
    except httpx.HTTPError as exc:
        if deadline.expired:  # the watchdog cut the connection
            raise BadInput(f"{name}: fetching the image took longer than "
                           f"{policy.timeout_s}s; {_HINT}") from None
        raise BadInput(f"{name}: fetching the image failed ({type(exc).__name__})") from None
    finally:
        deadline.cancel()


class _Expired(Exception):
    """The fetch passed its deadline (turned into a BadInput by :func:`fetch_pinned`)."""


class _Deadline:
    """One monotonic deadline for a fetch, and the watchdog that enforces it on the
    socket (found through httpcore's ``trace`` hook when the connection opens)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        """Seconds left, as the timeout of the next operation (never zero: httpx reads
        0 as "do not wait at all" and that is what an expired check is for)."""
        return max(0.001, self.at - time.monotonic())

    def check(self) -> None:
        if self.expired or time.monotonic() >= self.at:
            self.expired = True
            raise _Expired

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                with self._lock:
                    self._sock = sock
                    late = self.expired
                if late:
                    self._shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sock = self._sock
        if sock is not None:
            self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        # The plain socket's shutdown (for TLS too): it wakes a blocked recv in the
        # fetching thread without touching the TLS object that thread is using.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()
