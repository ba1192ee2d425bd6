"""``GET /v1/media/{key}``: stored page images, pictures and keyframes, as WebP; and
the originals of videos and recordings (``<doc_id>-orig``), with HTTP Range so a
player can start at a cited moment without fetching the whole file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse

from api.deps import PrincipalDep, ServiceDep
from api.errors import responses
from api.routers import V1
from rag.payload import THUMB_SIDES, parse_original_key

_SIZE = (
    "thumbnail: longest side in px, snapped up to the next of "
    + ", ".join(map(str, THUMB_SIDES))
    + f" (at most {THUMB_SIDES[-1]}; the image itself when it is no larger)"
)

router = APIRouter(prefix=V1, tags=["media"])


@router.get(
    "/media/{key}",
    response_class=Response,
    responses={200: {"content": {"image/webp": {}, "video/mp4": {}, "audio/mpeg": {}}},
               206: {"description": "part of an original (HTTP Range)"},
               **responses(404, 422)},
)
def get_media(
    key: str,
    service: ServiceDep,
    principal: PrincipalDep,
    size: Annotated[
        int | None, Query(ge=16, le=4096, description=_SIZE)
    ] = None,
) -> Response:
    """Keys are derived from the content, so a response never changes: cache it for a
    year (``private`` when API keys are on, so shared caches do not keep it).
    Thumbnails come in a few fixed sizes, so the server keeps at most that many per
    image whatever sizes are asked. An original is served as stored, byte ranges
    included (``Range: bytes=...`` gets 206), for ``<video>``/``<audio>`` seeking."""
    scope = "public" if principal.key_id is None else "private"
    if parse_original_key(key) is not None:
        path, mime = service.original(key, principal)
        return FileResponse(path, media_type=mime, headers={
            "Cache-Control": f"{scope}, max-age=31536000, immutable"})
    data = service.media(key, size, principal)
    return Response(
        data,
        media_type="image/webp",
        headers={
            "Cache-Control": f"{scope}, max-age=31536000, immutable",
            "ETag": f'"{key}.{size or 0}"',
        },
    )
