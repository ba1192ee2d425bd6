"""Tool results as MCP content: numbered text an assistant can quote, plus the page or
picture of each visual source as image content.

Pure functions over our own types, except that image bytes come through a callable
(``Pipeline.media_bytes``), so they can be tested without a server.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any

from mcp.types import ImageContent, TextContent

from rag.errors import MmragError
from rag.timecode import time_range
from rag.types import Answer, Citation, Hit

#: Longest side of an image sent back to the assistant: enough to read a page's layout
#: and large print, small enough that a handful of them fit a model's context.
THUMB_SIDE = 768
DEFAULT_IMAGES = 4
MAX_IMAGES = 8
SPAN_CHARS = 300

MediaFn = Callable[[str, int], bytes]
Content = TextContent | ImageContent


def quote(text: str, limit: int = SPAN_CHARS) -> str:
    """The span on one line, cut at a word boundary, as a ``>`` quote."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[:limit].rsplit(" ", 1)[0] + " …"
    return f"> {flat}" if flat else "> (no text: a picture)"


def where(source: str, page: int, start: float | None = None,
          end: float | None = None) -> str:
    """``file, page N``, or ``file, at 1:05-1:35`` for a video's frame or speech."""
    if start is not None:
        return f"{source}, at {time_range(start, end)}"
    return source + (f", page {page}" if page > 0 else "")


def hits_text(collection: str, query: str, hits: list[Hit]) -> str:
    if not hits:
        return f"No hits in collection {collection!r} for {query!r}."
    lines = [f"{len(hits)} hits in collection {collection!r} for {query!r}, best first:", ""]
    for i, h in enumerate(hits, 1):
        place = where(h.source, h.page, h.start, h.end)
        lines.append(f"[{i}] {place} ({h.modality}), score {h.score:.3f}")
        lines.append(f"    {quote(h.text)}")
    return "\n".join(lines)


def answer_text(answer: Answer) -> str:
    lines = [answer.text.rstrip()]
    if answer.citations:
        lines += ["", "Sources:"]
    for c in answer.citations:
        line = f"[{c.index}] {where(c.source, c.page, c.start, c.end)} ({c.modality})"
        if c.box:
            line += ", region x0,y0,x1,y1 = " + ", ".join(f"{v:.2f}" for v in c.box)
        lines.append(line)
        lines.append(f"    {quote(c.text)}")
    return "\n".join(lines)


def citation_media(answer: Answer, citation: Citation) -> str | None:
    """The media key of a cited source: its own, else that of the hit it came from."""
    if citation.media:
        return citation.media
    for h in answer.hits:
        if (h.doc_id, h.page, h.chunk) == (citation.doc_id, citation.page, citation.chunk):
            return h.media
    return None


def images(
    labelled: Iterable[tuple[str, str | None]], media: MediaFn, limit: int
) -> list[Content]:
    """A caption then the image, for each distinct media key, at most ``limit`` of them.

    A missing image (deleted since it was retrieved) becomes a one-line note rather than
    failing the whole result."""
    out: list[Content] = []
    seen: set[str] = set()
    for label, key in labelled:
        if len(seen) >= limit:
            break
        if not key or key in seen:
            continue
        seen.add(key)
        try:
            data = media(key, THUMB_SIDE)
        except MmragError as exc:
            out.append(TextContent(type="text", text=f"{label}: image unavailable ({exc})"))
            continue
        out.append(TextContent(type="text", text=f"{label}:"))
        out.append(ImageContent(type="image", data=base64.b64encode(data).decode(),
                                mime_type="image/webp"))
    return out


def hit_images(hits: list[Hit], media: MediaFn, limit: int) -> list[Content]:
    return images(
        ((f"image of [{i}] {where(h.source, h.page, h.start, h.end)}", h.media)
         for i, h in enumerate(hits, 1)),
        media, limit,
    )


def answer_images(answer: Answer, media: MediaFn, limit: int) -> list[Content]:
    return images(
        ((f"image of source [{c.index}] {where(c.source, c.page, c.start, c.end)}",
          citation_media(answer, c)) for c in answer.citations),
        media, limit,
    )


def hit_json(hit: Hit) -> dict[str, Any]:
    data = hit.to_json()
    data.pop("boxes", None)  # bulky; the text and page are what an assistant uses
    return data
