"""Images sent by clients (``image_url`` chat parts, the search ``image`` field).

Two ways in, both bounded:

- ``data:`` URLs (PNG, JPEG, WebP, GIF): size-checked before base64 decoding, then
  decoded by the ingest loader, which checks the pixel count from the image header
  before decoding any pixel data: a query image may have at most
  ``api.max_image_pixels`` (and never more than ``ingest.max_pixels``), so an 80 KB PNG
  that claims 62 megapixels is a 413 in milliseconds, not a gigabyte of RAM.
- ``http(s)`` URLs, only for hosts in ``api.image_url_allowlist``. Fetching URLs on a
  client's behalf is a classic SSRF hole, so: every address the host resolves to must be
  public (no private, loopback, link-local, reserved or multicast address, checked for
  each resolved IP, and for the IPv4 address an IPv6 one wraps: mapped, 6to4, Teredo,
  NAT64); the request then goes to the address
  that was checked (the host name is only sent as ``Host``/SNI), so a DNS answer that
  changes between check and connect (rebinding) cannot redirect it; redirects are not
  followed; proxies from the environment are ignored; the body is capped while it
  streams and the whole fetch has a short timeout.

Anything else is a 400 that says how to send the image instead.
"""

from __future__ import annotations

import base64
import binascii
import io
import ipaddress
import socket
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING
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


@dataclass(frozen=True)
class ImagePolicy:
    """The limits that apply to one client image."""

    max_pixels: int
    max_bytes: int
    allowlist: tuple[str, ...] = ()
    timeout_s: float = FETCH_TIMEOUT_S
    ingest_max_pixels: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> ImagePolicy:
        return cls(
            max_pixels=min(settings.ingest.max_pixels, settings.api.max_image_pixels),
            ingest_max_pixels=settings.ingest.max_pixels,
            max_bytes=min(settings.api.max_upload_bytes, FETCH_MAX_BYTES),
            allowlist=tuple(h.lower().strip() for h in settings.api.image_url_allowlist),
        )


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
    ``Host`` and TLS SNI so virtual hosting and certificate checks still work."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{ip}]" if ":" in ip else ip
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = f"{host}:{parts.port}" if parts.port else host
    try:
        with (
            httpx.Client(
                timeout=policy.timeout_s, follow_redirects=False, trust_env=False
            ) as client,
            client.stream(
                "GET",
                pinned,
                headers={"Host": host_header, "Accept": "image/*"},
                extensions={"sni_hostname": host},
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
                body.extend(chunk)
                if len(body) > policy.max_bytes:
                    raise LimitExceeded(
                        f"{name}: the image is over the {policy.max_bytes:,} byte limit"
                    )
            return bytes(body)
    except httpx.TimeoutException:
        raise BadInput(f"{name}: fetching the image timed out after {policy.timeout_s}s") from None
    except httpx.HTTPError as exc:
        raise BadInput(f"{name}: fetching the image failed ({type(exc).__name__})") from None
