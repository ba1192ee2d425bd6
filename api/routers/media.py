"""``GET /v1/media/{key}``: stored page images, pictures and keyframes, as WebP; and
the originals of videos and recordings (``<doc_id>-orig``), with HTTP Range so a
player can start at a cited moment without fetching the whole file.

``POST /v1/media/{key}/url`` signs a short-lived link to one of them that needs no
Bearer header (:mod:`api.media_links`), for ``<video>``/``<audio>`` elements, which
cannot send one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse

from api import schemas as s
from api.deps import PrincipalDep, ServiceDep
from api.errors import responses
from api.media_links import EXP, KID, SIG, is_signed
from api.routers import V1
from rag.payload import THUMB_SIDES, parse_original_key

_SIZE = (
    "thumbnail: longest side in px, snapped up to the next of "
    + ", ".join(map(str, THUMB_SIDES))
    + f" (at most {THUMB_SIDES[-1]}; the image itself when it is no larger)"
)
_SIGNED = "part of a signed link from POST /v1/media/{key}/url (then no Bearer header)"

router = APIRouter(prefix=V1, tags=["media"])


@router.get(
    "/media/{key}",
    response_class=Response,
    responses={200: {"content": {"image/webp": {}, "video/mp4": {}, "audio/mpeg": {}}},
               206: {"description": "part of an original (HTTP Range)"},
               **responses(400, 404, 422)},
)
def get_media(
    key: str,
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
    size: Annotated[
        int | None, Query(ge=16, le=4096, description=_SIZE)
    ] = None,
    # Declared for the schema; api.deps reads and checks them before this runs.
    exp: Annotated[str | None, Query(alias=EXP, description=_SIGNED + ": expiry")] = None,
    kid: Annotated[str | None, Query(alias=KID, description=_SIGNED + ": key id")] = None,
    sig: Annotated[str | None, Query(alias=SIG, description=_SIGNED + ": signature")] = None,
) -> Response:
    """Keys are derived from the content, so a response never changes: cache it for a
    year (``private`` when API keys are on, so shared caches do not keep it).
    Thumbnails come in a few fixed sizes, so the server keeps at most that many per
    image whatever sizes are asked. An original is served as stored, byte ranges
    included (``Range: bytes=...`` gets 206), for ``<video>``/``<audio>`` seeking.
    Through a signed link nothing is cached (``no-store``: the URL dies soon, and the
    file must not outlive it in a cache) and no referrer carries the link on."""
    if is_signed(request.query_params):
        headers = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}
    else:
        scope = "public" if principal.key_id is None else "private"
        headers = {"Cache-Control": f"{scope}, max-age=31536000, immutable"}
    if parse_original_key(key) is not None:
        path, mime = service.original(key, principal)
        return FileResponse(path, media_type=mime, headers=headers)
    data = service.media(key, size, principal)
    return Response(data, media_type="image/webp",
                    headers={**headers, "ETag": f'"{key}.{size or 0}"'})


@router.post("/media/{key}/url", response_model=s.MediaLink, responses=responses(404, 422))
def sign_media(key: str, service: ServiceDep, principal: PrincipalDep) -> s.MediaLink:
    """A link to ``key`` that plays without the Bearer header for
    ``api.media_url_ttl_s`` seconds (600 by default): give it to a ``<video>`` or
    ``<audio>`` element as its ``src`` (``#t=<seconds>`` starts it there) and it streams
    by HTTP Range. It opens ``GET`` of this one key, for the caller's scope, and nothing
    else; a changed, foreign or expired link is a 403."""
    return service.media_link(key, principal)
