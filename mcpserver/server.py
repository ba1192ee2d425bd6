"""The MCP tools and resources, each a thin call to one ``Pipeline`` public method.

The same server object serves both transports; what differs is decided here, once:

- **stdio** (``mmrag mcp``): the caller is whoever started the process, so every
  collection is open, ``ingest`` takes paths on this machine and a query image may be
  a file path.
- **http** (``/mcp`` in ``mmrag serve``): the caller is the API key on the HTTP request
  (checked by :mod:`mcpserver.http` before the SDK sees it); a collection outside the
  key's scope answers exactly like a missing one, ``ingest`` takes uploaded bytes
  (never server paths) and runs them as a job under the server's upload budgets, and a
  query image must be a data URL (or an allow-listed URL).

Who may see what, upload names and limits and query-image loading are the rules of
:mod:`policy`, the ones the REST routes apply too; nothing here comes from ``api/``.

Errors a caller can fix come back as MCP tool errors (``isError: true``) with our
message; nothing a client sends crashes the server.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, ParamSpec, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from mcpserver import render
from pipeline.report import IngestReport
from policy import access
from policy.filters import SearchFilter
from policy.images import ImagePolicy, query_image
from policy.names import source_names
from policy.principals import OPEN, Principal
from policy.uploads import Uploads
from rag.errors import BadInput, MmragError, Unauthorized, one_line
from rag.settings import Settings
from rag.types import Filter

if TYPE_CHECKING:
    from PIL import Image

    from pipeline import Job, Pipeline
    from pipeline.report import Progress

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


def _tool_error(fn: Callable[..., Any], exc: Exception) -> ToolError:
    """Our errors become tool errors with our message; anything else is logged and
    reported as an internal error on one line (never a traceback to the client)."""
    if isinstance(exc, ToolError):
        return exc
    if isinstance(exc, MmragError):
        return ToolError(str(exc))
    log.exception("MCP tool %s failed", fn.__name__, exc_info=exc)
    return ToolError(f"internal error: {one_line(exc)}")


def _tool(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise _tool_error(fn, exc) from None

    return wrapper


def _async_tool(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            raise _tool_error(fn, exc) from None

    return wrapper


class Tools:
    """The tool bodies. ``pipeline`` is a callable so the HTTP app can hand over the
    pipeline its lifespan builds after this object exists; ``uploads`` is the server's
    upload budget (HTTP only: stdio ingests paths)."""

    #: How often a followed upload job's state is read while the tool waits for it.
    poll_s = 0.1

    def __init__(self, pipeline: PipelineFn, settings: Settings, transport: Transport,
                 uploads: Uploads | None = None) -> None:
        self._pipeline = pipeline
        self.settings = settings
        self.transport = transport
        self.image_policy = ImagePolicy.from_settings(settings)
        self.uploads = uploads if uploads is not None else Uploads(settings.api)

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
        return access.collection(self.pipeline, self.principal(ctx), name)

    def image(self, value: str | None) -> Image.Image | None:
        """Over stdio the caller is the local user, so a file path is read too."""
        return query_image(value, self.image_policy, "image",
                           allow_paths=self.transport == "stdio")

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
        rows = access.visible_rows(self.principal(ctx), self.pipeline.collections())
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

    async def ingest_uploads(
        self,
        collection: CollectionArg,
        files: Annotated[list[Upload], Field(min_length=1, description="the files, base64")],
        metadata: Annotated[dict[str, MetadataValue] | None, Field(
            default=None, description="filterable values applied to every file")] = None,
        ctx: Context | None = None,
    ) -> CallToolResult:
        """Spool the files, queue them as an ingest job under the server's upload budgets
        (the ones REST uploads take), then follow the job to its end with progress
        notifications. The job belongs to the server, not to this call: a client that
        goes away leaves it running to the end (``GET /v1/jobs/{id}`` shows it)."""
        access.require_writable(self.principal(ctx), collection)
        self.uploads.check_count(len(files))
        names = source_names([f.name for f in files])
        job = await anyio.to_thread.run_sync(
            self._submit_uploads, collection, names, files, dict(metadata or {}))
        return _job_report(await self._follow(job, ctx))

    def _submit_uploads(self, collection: str, names: list[str], files: list[Upload],
                        metadata: dict[str, Any]) -> Job:
        """Decode each file into its own spool file (one file's bytes in memory at a
        time besides the request), holding them against the in-flight budget, then
        submit the job; a refused upload leaves no spool behind."""
        uploads, pipeline = self.uploads, self.pipeline
        estimate = sum(len(f.data) * 3 // 4 for f in files)
        lease = uploads.admit(None)
        spool: Path | None = None
        try:
            uploads.spool.check(estimate)  # before anything is decoded or written
            spool = pipeline.new_spool()
            sizes = []
            for i, f in enumerate(files):
                data = uploads.decode_base64(f.name, f.data)
                lease.take(len(data))
                (spool / f"{i:05d}").write_bytes(data)
                sizes.append(len(data))
            return uploads.submit(pipeline, collection, names, spool, sizes, metadata)
        except BaseException:
            if spool is not None:
                pipeline.discard_spool(spool)
            raise
        finally:
            lease.release()

    async def _follow(self, job: Job, ctx: Context | None) -> Job:
        """The job's state until it ends, sending its file count as progress."""
        done = -1
        while True:
            if ctx is not None and job.files_done != done:
                done = job.files_done
                with suppress(Exception):
                    await ctx.report_progress(float(done), float(len(job.files)),
                                              f"job {job.id}: {job.status}")
            if job.final:
                return job
            await anyio.sleep(self.poll_s)
            job = await anyio.to_thread.run_sync(self.pipeline.job, job.id)

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
            access.require_media_visible(self.pipeline, self.principal(ctx), key)
            return self.pipeline.media_bytes(key, None)
        except MmragError as exc:
            raise ResourceError(str(exc)) from None


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


def _job_report(job: Job) -> CallToolResult:
    """An upload job's end as the per-file report a direct ingest gives, with its id."""
    seconds = (job.finished or job.created) - job.created
    result = _report(IngestReport(job.collection, list(job.files), seconds))
    lines = [f"job {job.id}: {job.status}" + (f" ({job.error})" if job.error else "")]
    result.content = [TextContent(type="text", text="\n".join(lines)), *result.content]
    assert result.structured_content is not None
    result.structured_content.update(job=job.id, status=job.status, error=job.error)
    result.is_error = result.is_error or job.status != "done"
    return result


def build_server(
    pipeline: PipelineFn,
    settings: Settings,
    transport: Transport,
    lifespan: Lifespan | None = None,
    uploads: Uploads | None = None,
) -> MCPServer[Any]:
    """The MCP server for one transport; ``pipeline`` returns the (loaded) pipeline and
    ``uploads`` is the server's upload budget, shared with its REST routes (HTTP)."""
    tools = Tools(pipeline, settings, transport, uploads)
    server: MCPServer[Any] = MCPServer(
        "mmrag", title="mmrag: multimodal RAG with citations", version="0.1.0",
        instructions=INSTRUCTIONS, lifespan=lifespan, log_level="WARNING",
    )
    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False,
                                idempotent_hint=True)

    def add(fn: Callable[..., Any], name: str, description: str, **kw: Any) -> None:
        wrapped = _async_tool(fn) if inspect.iscoroutinefunction(fn) else _tool(fn)
        server.add_tool(wrapped, name=name, description=description,
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
            "WebP, GIF, TIFF, BMP, .txt, .md. Stored as upload/<name>. Runs as a server "
            "job (progress is reported; it finishes even if this call is abandoned) and "
            "returns the status of each file.",
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

