"""The chat page at ``/`` and its static files under ``/static``.

Everything the page needs ships in ``api/static`` (no CDN, no build step). The page and
its assets are public: they contain no data, and the page asks for an API key the first
time the API answers 401.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(tags=["page"], include_in_schema=False)

# The page may only load what ships with it, and only talk to this server.
_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


@router.get("/")
def chat_page() -> FileResponse:
    return FileResponse(
        STATIC / "index.html",
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": _CSP,
                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"},
    )


def mount_static(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
