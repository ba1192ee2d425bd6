"""The MCP tools and resources, each a thin call to one ``Pipeline`` public method.

The same server object serves both transports; what differs is decided here, once:

- **stdio** (``mmrag mcp``): the caller is whoever started the process, so every
  collection is open, ``ingest`` takes paths on this machine and a query image may be
  a file path.
- **http** (``/mcp`` in ``mmrag serve``): the caller is the API key on the HTTP request
  (checked by :mod:`mcpserver.http` before the SDK sees it); a collection outside the
  key's scope answers exactly like a missing one, ``ingest`` takes uploaded bytes
  (never server paths) and a query image must be a data URL.

Errors a caller can fix come back as MCP tool errors (``isError: true``) with our
message; nothing a client sends crashes the server.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, ParamSpec, TypeVar

import anyio.from_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from api.auth import OPEN, Principal
from api.filenames import source_names
from api.images import ImagePolicy, decode, load_image
from api.schemas import SearchFilter
from mcpserver import render
from rag.errors import BadInput, LimitExceeded, MmragError, NotFound, Unauthorized, one_line
from rag.settings import Settings
from rag.types import Filter

if TYPE_CHECKING:
    from PIL import Image

    from pipeline import Pipeline
    from pipeline.runner import IngestReport, Progress

log = logging.getLogger("mmrag.mcp")

Transport = Literal["stdio", "http"]
PipelineFn = Callable[[], "Pipeline"]
Lifespan = Callable[[MCPServer[Any]], AbstractAsyncContextManager[Any]]

#: Where :mod:`mcpserver.http` leaves the authenticated caller in the ASGI scope.
PRINCIPAL_SCOPE_KEY = "mmrag.principal"

INSTRUCTIONS = """\
mmrag answers questions over a user's own media (photos, screenshots, scanned and
digital PDFs, text) and always cites its sources. Call `collections` first to learn the
collection names. Use `ask` for an answer with numbered citations and the cited page
images; use `search` for the raw ranked passages and pictures. Quote the source file and
page when you use a result."""

P = ParamSpec("P")
R = TypeVar("R")


class Turn(BaseModel):
    """One earlier message of the conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)


class Upload(BaseModel):
    """A file sent in the call itself."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255, description="file name, e.g. manual.pdf")
    data: str = Field(description="the file's bytes, base64 (a data: URL is accepted too)")


MetadataValue = str | int | float | bool

CollectionArg = Annotated[
    str, Field(min_length=1, max_length=64, description="collection name (see `collections`)")
]
ImageArg = Annotated[
    str | None, Field(default=None, description="an image to search or ask with: a data URL "
                      "(data:image/png;base64,...); over stdio also a file path")
]
FilterArg = Annotated[
    SearchFilter | None, Field(default=None, description="restrict to modalities, a source "
                               "path prefix, or exact user-metadata values")
]
ImagesArg = Annotated[
    int, Field(default=render.DEFAULT_IMAGES, ge=0, le=render.MAX_IMAGES,
               description="how many page/picture images to return (thumbnails)")
]


def _tool(fn: Callable[P, R]) -> Callable[P, R]:
    """Our errors become tool errors with our message; anything else is logged and
    reported as an internal error on one line (never a traceback to the client)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ToolError:
            raise
        except MmragError as exc:
            raise ToolError(str(exc)) from None
        except Exception as exc:
            log.exception("MCP tool %s failed", fn.__name__)
            raise ToolError(f"internal error: {one_line(exc)}") from None

    return wrapper


class Tools:
    """The tool bodies. ``pipeline`` is a callable so the HTTP app can hand over the
    pipeline its lifespan builds after this object exists."""

    def __init__(self, pipeline: PipelineFn, settings: Settings, transport: Transport) -> None:
        self._pipeline = pipeline
        self.settings = settings
        self.transport = transport
        self.image_policy = ImagePolicy.from_settings(settings)

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline()

    # --- who is calling ------------------------------------------------------------------
    def principal(self, ctx: Context | None) -> Principal:
        if self.transport == "stdio":
            return OPEN
        request = ctx.request_context.request if ctx is not None else None
        scope = getattr(request, "scope", None) or {}
        principal = scope.get(PRINCIPAL_SCOPE_KEY)
        if not isinstance(principal, Principal):
            raise Unauthorized("this MCP request did not come through the API-key check")
        return principal

    def collection(self, ctx: Context | None, name: str) -> str:
        """``name`` if it exists and the caller may use it; one message for both failures,
        so a scoped key cannot learn which collections exist."""
        principal = self.principal(ctx)
        if not principal.can_see(name) or name not in self._names():
            raise NotFound(
                f"collection {name!r} does not exist; the `collections` tool lists the ones "
                "you can use"
            )
        return name

    def _names(self) -> set[str]:
        return set(self.pipeline.collection_names())

    def image(self, value: str | None) -> Image.Image | None:
        if not value or not value.strip():
            return None
        value = value.strip()
        scheme = value.split(":", 1)[0].lower() if ":" in value else ""
        if scheme in ("data", "http", "https"):
            return load_image(value, self.image_policy, "image")
        if self.transport != "stdio":
            raise BadInput(
                "image: over HTTP send the image inline as a data URL "
                "(data:image/png;base64,...); server file paths are only read over stdio"
            )
        path = Path(value).expanduser()
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise BadInput(f"image: cannot read {value} ({exc.strerror or exc})") from None
        limit = self.settings.ingest.max_file_bytes
        if size > limit:
            raise LimitExceeded(f"image: {value} is {size:,} bytes, over the {limit:,} byte "
                                "limit (ingest.max_file_bytes)")
        return decode(path.read_bytes(), self.settings.ingest.max_pixels, str(path))

    # --- tools ---------------------------------------------------------------------------
    def search(
        self,
        collection: CollectionArg,
        query: Annotated[str, Field(default="", max_length=4000,
                                    description="what to look for, in words")] = "",
        image: ImageArg = None,
        limit: Annotated[int, Field(default=8, ge=1, le=50, description="how many hits")] = 8,
        filter: FilterArg = None,
        images: ImagesArg = render.DEFAULT_IMAGES,
        ctx: Context | None = None,
    ) -> CallToolResult:
        name = self.collection(ctx, collection)
        picture = self.image(image)
        if not query.strip() and picture is None:
            raise BadInput("search needs a query, an image, or both")
        flt: Filter | None = filter.to_filter() if filter else None
        hits = self.pipeline.search(name, query or None, picture, limit, flt)
        label = query.strip() or "(the image)"
        content: list[Any] = [TextContent(type="text", text=render.hits_text(name, label, hits))]
        content += render.hit_images(hits, self.pipeline.media_bytes, images)
        return CallToolResult(
            content=content, structured_content={"hits": [render.hit_json(h) for h in hits]}
        )

    def ask(
        self,
        collection: CollectionArg,
        question: Annotated[str, Field(default="", max_length=8000,
                                       description="the question, in words")] = "",
        image: ImageArg = None,
        history: Annotated[list[Turn] | None, Field(
            default=None, max_length=50,
            description="earlier turns of the conversation, oldest first, so a follow-up "
                        "such as 'and on page 3?' is understood")] = None,
        limit: Annotated[int | None, Field(default=None, ge=1, le=20,
                                           description="how many sources to retrieve")] = None,
        filter: FilterArg = None,
        images: ImagesArg = render.DEFAULT_IMAGES,
        ctx: Context | None = None,
    ) -> CallToolResult:
        name = self.collection(ctx, collection)
        picture = self.image(image)
        if not question.strip() and picture is None:
            raise BadInput("ask needs a question, an image, or both")
        turns = [t.model_dump() for t in history or []]
        flt = filter.to_filter() if filter else None
        answer = self.pipeline.ask(name, question, picture, turns, flt, limit)
        content: list[Any] = [TextContent(type="text", text=render.answer_text(answer))]
        content += render.answer_images(answer, self.pipeline.media_bytes, images)
        return CallToolResult(
            content=content,
            structured_content={
                "answer": answer.text,
                "citations": [c.to_json() for c in answer.citations],
                "generator": answer.model,
            },
        )

    def collections(self, ctx: Context | None = None) -> CallToolResult:
        principal = self.principal(ctx)
        rows = [r for r in self.pipeline.collections() if principal.can_see(r["name"])]
        text = "\n".join(f"{r['name']}: {r['points']} points" for r in rows)
        return CallToolResult(
            content=[TextContent(type="text", text=text or "No collections yet.")],
            structured_content={"collections": rows},
        )

    def documents(self, collection: CollectionArg, ctx: Context | None = None) -> CallToolResult:
        name = self.collection(ctx, collection)
        rows = self.pipeline.documents(name)
        lines = [f"{len(rows)} documents in {name!r}:"] + [
            f"{r['source']} ({r['mime']}, {r['pages']} pages, {r['points']} points)" for r in rows
        ]
        return CallToolResult(
            content=[TextContent(type="text", text="\n".join(lines))],
            structured_content={"documents": rows},
        )

    def ingest_paths(
        self,
        collection: CollectionArg,
        paths: Annotated[list[str], Field(min_length=1, max_length=1000,
                                          description="files or folders on this machine "
                                                      "(folders are read recursively)")],
        metadata: Annotated[dict[str, MetadataValue] | None, Field(
            default=None, description="filterable values applied to every file")] = None,
        ctx: Context | None = None,
    ) -> CallToolResult:
        report = self.pipeline.ingest(collection, paths, metadata or {},
                                      progress=self._progress(ctx))
        return _report(report)

    def ingest_uploads(
        self,
        collection: CollectionArg,
        files: Annotated[list[Upload], Field(min_length=1, description="the files, base64")],
        metadata: Annotated[dict[str, MetadataValue] | None, Field(
            default=None, description="filterable values applied to every file")] = None,
        ctx: Context | None = None,
    ) -> CallToolResult:
        if not self.principal(ctx).can_see(collection):
            raise NotFound(f"collection {collection!r} does not exist and this API key may "
                           "not create it")
        api = self.settings.api
        if len(files) > api.max_files_per_request:
            raise LimitExceeded(f"{len(files)} files in one call; the limit is "
                                f"{api.max_files_per_request} (api.max_files_per_request)")
        names = source_names([f.name for f in files])
        blobs = [(n, _b64(f, api.max_upload_bytes)) for n, f in zip(names, files, strict=True)]
        report = self.pipeline.ingest_bytes(collection, dict(blobs), metadata or {},
                                            progress=self._progress(ctx))
        return _report(report)

    def delete(
        self,
        collection: CollectionArg,
        source: Annotated[str, Field(min_length=1, description="the stored source name, as "
                                                               "`documents` lists it")],
        ctx: Context | None = None,
    ) -> CallToolResult:
        name = self.collection(ctx, collection)
        points = self.pipeline.delete_source(name, source)
        return CallToolResult(
            content=[TextContent(type="text",
                                 text=f"Deleted {source} ({points} points) from {name!r}.")],
            structured_content={"deleted": source, "points": points},
        )

    def _progress(self, ctx: Context | None) -> Callable[[Progress], None] | None:
        """Progress notifications from the worker thread (only sent when the client asked
        for them with a progress token)."""
        if ctx is None:
            return None

        def report(p: Progress) -> None:
            with suppress(Exception):
                anyio.from_thread.run(ctx.report_progress, float(p.files_done),
                                      float(p.files_total), p.current)

        return report

    # --- resources -----------------------------------------------------------------------
    def documents_resource(self, collection: str, ctx: Context | None = None) -> str:
        import json

        try:
            return json.dumps({"documents": self.pipeline.documents(
                self.collection(ctx, collection))})
        except MmragError as exc:
            raise ResourceError(str(exc)) from None

    def media_resource(self, key: str, ctx: Context | None = None) -> bytes:
        try:
            principal = self.principal(ctx)
            if not principal.unrestricted and not any(
                principal.can_see(n) for n in self.pipeline.media_collections(key)
            ):
                raise NotFound(f"media {key!r} does not exist")
            return self.pipeline.media_bytes(key, None)
        except MmragError as exc:
            raise ResourceError(str(exc)) from None


def _b64(upload: Upload, max_bytes: int) -> bytes:
    raw = upload.data.strip()
    if raw.startswith("data:"):
        raw = raw.partition(",")[2]
    if len(raw) * 3 // 4 > max_bytes + 3:
        raise LimitExceeded(f"{upload.name}: over the {max_bytes:,} byte upload limit "
                            "(api.max_upload_bytes); POST large files to "
                            "/v1/collections/{name}/documents instead")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput(f"{upload.name}: data is not valid base64") from None
    if len(data) > max_bytes:
        raise LimitExceeded(f"{upload.name}: {len(data):,} bytes is over the {max_bytes:,} "
                            "byte upload limit (api.max_upload_bytes)")
    return data


def _report(report: IngestReport) -> CallToolResult:
    lines = [report.summary()]
    for f in report.files:
        line = f"{f.status}: {f.source}"
        if f.error:
            line += f" ({f.error})"
        lines.append(line)
    return CallToolResult(
        content=[TextContent(type="text", text="\n".join(lines))],
        structured_content={"summary": report.summary(),
                            "files": [vars(f) for f in report.files]},
        is_error=bool(report.files) and len(report.failed) == len(report.files),
    )


def build_server(
    pipeline: PipelineFn,
    settings: Settings,
    transport: Transport,
    lifespan: Lifespan | None = None,
) -> MCPServer[Any]:
    """The MCP server for one transport; ``pipeline`` returns the (loaded) pipeline."""
    tools = Tools(pipeline, settings, transport)
    server: MCPServer[Any] = MCPServer(
        "mmrag", title="mmrag: multimodal RAG with citations", version="0.1.0",
        instructions=INSTRUCTIONS, lifespan=lifespan, log_level="WARNING",
    )
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False,
                                idempotent_hint=True)

    def add(fn: Callable[..., Any], name: str, description: str, **kw: Any) -> None:
        server.add_tool(_tool(fn), name=name, description=description,
                        structured_output=False, **kw)

    add(tools.search, "search",
        "Search a collection with words, an image, or both. Returns the best passages, "
        "pictures and pages, each numbered with its source file, page, score and the quoted "
        "text, followed by the page or picture image of each visual hit (thumbnails).",
        annotations=read_only)
    add(tools.ask, "ask",
        "Answer a question from a collection's documents, with numbered citations [n] "
        "naming file, page and the region of the page, followed by the cited page images. "
        "Optionally ask about an image, and pass the earlier turns as history.",
        annotations=read_only)
    add(tools.collections, "collections",
        "List the collections you can search, with their sizes in points.",
        annotations=read_only)
    add(tools.documents, "documents",
        "List the documents (sources) stored in a collection: file name, type, pages.",
        annotations=read_only)
    if transport == "stdio":
        add(tools.ingest_paths, "ingest",
            "Add files or folders on this machine to a collection (created if needed): PDF, "
            "PNG, JPEG, WebP, GIF, TIFF, BMP, .txt, .md. Unchanged files are skipped.",
            annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                        idempotent_hint=True))
    else:
        add(tools.ingest_uploads, "ingest",
            "Upload files (base64) into a collection (created if needed): PDF, PNG, JPEG, "
            "WebP, GIF, TIFF, BMP, .txt, .md. Stored as upload/<name>.",
            annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                        idempotent_hint=True))
    add(tools.delete, "delete",
        "Remove one document (by its source name, as `documents` lists it) and all its "
        "points from a collection.",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True,
                                    idempotent_hint=False))

    server.resource("mmrag://collections/{collection}/documents", name="documents",
                    description="the documents of a collection, as JSON",
                    mime_type="application/json")(tools.documents_resource)
    server.resource("mmrag://media/{key}", name="media",
                    description="a stored page image or picture (WebP); keys appear in "
                                "search results", mime_type="image/webp")(tools.media_resource)
    return server

