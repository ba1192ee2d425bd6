"""Who may see which collection, job and media item: one set of checks for every surface.

The HTTP routes and the MCP tools used to answer these questions each in their own
words; a security rule written twice drifts. Each check here either returns what the
caller may use or raises the error a caller outside its scope gets, and that error is
the one a missing thing gets too (:func:`~policy.principals.collection_not_found`), so
a scoped key cannot learn what exists beyond its scope by comparing answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from policy.principals import Principal, collection_not_found, require_visible
from rag.errors import Forbidden, NotFound

if TYPE_CHECKING:
    from pipeline import Job, Pipeline

Row = TypeVar("Row", bound=Mapping[str, Any])


def collection(pipeline: Pipeline, principal: Principal, name: str) -> str:
    """``name`` if it exists and ``principal`` may use it; one 404 for both failures."""
    require_visible(principal, name)
    if not pipeline.has_collection(name):
        raise collection_not_found(name)
    return name


def visible_names(principal: Principal, names: Iterable[str]) -> list[str]:
    """The collection names ``principal`` may see, in their order."""
    return [n for n in names if principal.can_see(n)]


def visible_rows(principal: Principal, rows: Iterable[Row]) -> list[Row]:
    """Collection rows (``{"name": ...}``) ``principal`` may see, in their order."""
    return [r for r in rows if principal.can_see(r["name"])]


def require_creatable(principal: Principal, name: str) -> None:
    """Creating a collection by name: nothing about what exists is at stake (the caller
    chose the name), so a key outside its scope gets the honest 403."""
    if not principal.can_see(name):
        raise Forbidden(f"this API key may not create collection {name!r}")


def require_writable(principal: Principal, name: str) -> None:
    """Uploading into ``name`` (created if missing): a 404 outside the key's scope, the
    same whether or not the collection exists."""
    if not principal.can_see(name):
        raise NotFound(
            f"collection {name!r} does not exist and this API key may not create it; "
            "upload into a collection the key is scoped to"
        )


def require_job_visible(principal: Principal, job: Job) -> Job:
    """A job is visible with its collection; otherwise it does not exist."""
    if not principal.can_see(job.collection):
        raise NotFound(f"job {job.id!r} does not exist")
    return job


def require_media_visible(pipeline: Pipeline, principal: Principal, key: str) -> None:
    """Media files are shared by content across collections, so a scoped key sees an
    image only if one of its collections stores the document it belongs to."""
    if principal.unrestricted:
        return
    if not any(principal.can_see(c) for c in pipeline.media_collections(key)):
        raise NotFound(f"media {key!r} does not exist")


def require_media_held(pipeline: Pipeline, principal: Principal, key: str) -> None:
    """Stricter than :func:`require_media_visible` (which lets an unrestricted key past
    without a store lookup, the file read then answers 404): the key must belong to a
    document that one of ``principal``'s collections stores now. For issuing signed
    links, so none is ever signed for media that does not exist."""
    if not any(principal.can_see(c) for c in pipeline.media_collections(key)):
        raise NotFound(f"media {key!r} does not exist")
