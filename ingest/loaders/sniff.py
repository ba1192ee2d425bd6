"""File type detection from content, not from the name.

Names lie (a screenshot saved as ``.jpg`` that is really PNG, an upload renamed by a
browser); magic bytes do not. The extension is used only for formats without magic
bytes (plain text and Markdown), and to give a better message for a corrupt file.
"""

from __future__ import annotations

import mimetypes

from ingest.loaders.base import suffix_of
from rag.errors import FileRejected, UnsupportedFile

PDF = "application/pdf"
IMAGE_MIMES: dict[str, str] = {  # mime -> Pillow format name
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
    "image/tiff": "TIFF",
    "image/bmp": "BMP",
}

# Video and audio containers (read with PyAV, ingest/loaders/media.py).
VIDEO_MIMES: frozenset[str] = frozenset({
    "video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/x-msvideo",
})
AUDIO_MIMES: frozenset[str] = frozenset({
    "audio/wav", "audio/mpeg", "audio/mp4", "audio/aac", "audio/flac", "audio/ogg",
})
MEDIA_MIMES: frozenset[str] = VIDEO_MIMES | AUDIO_MIMES
# ISO base media brands of audio-only files (iTunes audio, audiobooks, protected audio).
_AUDIO_BRANDS = (b"M4A ", b"M4B ", b"M4P ", b"F4A ")

# Text formats by extension. Anything else whose extension Python's built-in table maps
# to text/* (.csv, .html, .py, ...) is read as plain text as well.
TEXT_EXTENSIONS: dict[str, str] = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".log": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".rst": "text/x-rst",
}

# Extensions of binary formats we read: a file so named without matching magic bytes is
# a corrupt or mislabelled file, not an unsupported one.
_BINARY_EXTENSIONS: dict[str, str] = {
    ".pdf": "PDF",
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".jfif": "JPEG",
    ".webp": "WebP",
    ".gif": "GIF",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".dib": "BMP",
    ".mp4": "MP4",
    ".m4v": "MP4",
    ".mov": "QuickTime",
    ".mkv": "Matroska",
    ".webm": "WebM",
    ".avi": "AVI",
    ".wav": "WAV",
    ".mp3": "MP3",
    ".m4a": "M4A",
    ".aac": "AAC",
    ".flac": "FLAC",
    ".ogg": "Ogg",
    ".oga": "Ogg",
    ".opus": "Opus",
}

SUPPORTED = (
    "PDF, PNG, JPEG, WebP, GIF, TIFF, BMP, video (MP4, MOV, MKV, WebM, AVI), audio (WAV, "
    "MP3, M4A/AAC, FLAC, Ogg/Opus), and text (.txt, .md, .markdown, other text/*)"
)

# Python's built-in table only (not /etc/mime.types), so detection is the same everywhere.
_BUILTIN_TYPES = mimetypes.MimeTypes()

# BITMAPINFOHEADER sizes of the BMP variants Pillow reads; checking them keeps a text
# file that happens to start with "BM" from being taken for a bitmap.
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}


def magic_mime(data: bytes) -> str | None:
    """The mime type the leading bytes announce, or None."""
    head = data[:32]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "image/tiff"
    if (
        head[:2] == b"BM"
        and len(head) >= 18
        and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES
    ):
        return "image/bmp"
    media = _media_mime(head, data)
    if media is not None:
        return media
    # The PDF spec lets the header follow up to 1 KiB of junk, and readers accept it.
    if b"%PDF-" in data[:1024]:
        return PDF
    return None


def _media_mime(head: bytes, data: bytes) -> str | None:
    """Video and audio containers by their magic bytes."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AUDIO_BRANDS:
            return "audio/mp4"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska, or WebM by its DocType
        return "video/webm" if b"webm" in data[:64] else "video/x-matroska"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:4] == b"fLaC":
        return "audio/flac"
    if head[:4] == b"OggS":
        return "audio/ogg"
    if head[:3] == b"ID3":
        return "audio/mpeg"
    if len(head) >= 2 and head[0] == 0xFF and head[1] != 0xFE:  # FF FE: UTF-16 text
        if head[1] & 0xF6 == 0xF0:  # ADTS: 12 sync bits, layer 00
            return "audio/aac"
        if head[1] & 0xE0 == 0xE0 and (head[1] >> 1) & 0x3 != 0 and head[1] & 0x18 != 0x08:
            return "audio/mpeg"  # an MPEG audio frame header without ID3 tag
    return None


def text_mime(name: str) -> str | None:
    """The text mime type the name announces, or None when it is not a text name."""
    suffix = suffix_of(name)
    if suffix in TEXT_EXTENSIONS:
        return TEXT_EXTENSIONS[suffix]
    if suffix:
        guessed, _ = _BUILTIN_TYPES.guess_type("x" + suffix, strict=False)
        if guessed and guessed.startswith("text/"):
            return guessed
    return None


def sniff(name: str, data: bytes) -> str:
    """The mime type to load ``data`` as, or a typed error that says why not."""
    if not data:
        raise FileRejected(f"{name}: the file is empty (0 bytes)")
    mime = magic_mime(data)
    as_text = text_mime(name)
    if mime == PDF and as_text is not None and not data.startswith(b"%PDF-"):
        # "%PDF-" somewhere in the first KiB of a .txt/.md is a note about PDFs, not one.
        return as_text
    if mime in ("audio/mpeg", "audio/aac") and as_text is not None and data[:1] == b"\xff":
        # A bare frame-sync is only 11 bits: a text file's odd first bytes can match it.
        return as_text
    if mime is not None:
        return mime
    if as_text is not None:
        return as_text
    expected = _BINARY_EXTENSIONS.get(suffix_of(name))
    if expected is not None:
        raise FileRejected(
            f"{name}: the name says {expected} but the content is not {expected} "
            "(its first bytes match no known format); the file is corrupt or truncated"
        )
    raise UnsupportedFile(f"{name}: unsupported file type; supported types: {SUPPORTED}")
