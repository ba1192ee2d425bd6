"""The API's behaviour, one method per route, with no HTTP in sight.

Routers translate requests into calls here and results back into responses. This
module applies the rules of :mod:`policy` (who may see what, upload names and limits,
query images: the same rules MCP applies), turns media keys into URLs and
pipeline results into response schemas; the OpenAI wire format lives in
``api/openai_compat.py``, job execution in ``pipeline/jobs.py``. Methods raise
:mod:`rag.errors` types, which ``api/errors.py`` maps to statuses.

Most methods block (models, the vector store), so the routers are plain ``def``
functions that FastAPI runs in its thread pool; search and chat go through
:meth:`RagService.admitted` (admission on the event loop, then a worker thread); job
event streams are async and only poll cheap state, so hundreds of followers cost no
threads.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.concurrency import run_in_threadpool

from api import openai_compat as oa
from api import schemas as s
from api.media_links import MediaLinks
from api.metrics import Metrics
from api.uploads import UploadForm, drain, parse_metadata, read_upload
from pipeline import FINAL, Job, Pipeline
from policy import access
from policy.images import ImagePolicy, query_image
from policy.names import source_names
from policy.principals import Principal, require_unrestricted
from policy.uploads import Uploads
from rag.errors import BadInput, Forbidden, MmragError, NotReady, one_line
from rag.payload import original_key
from rag.settings import Settings
from rag.types import Citation, Filter, GenerationEvent, Hit

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger("mmrag.api")

MEDIA_PREFIX = "/v1/media/"
T = TypeVar("T")


class RagService:
    """Everything the routes do, over one :class:`~pipeline.Pipeline`."""

    def __init__(self, settings: Settings, pipeline: Pipeline, metrics: Metrics | None = None,
                 uploads: Uploads | None = None, links: MediaLinks | None = None) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.metrics = metrics
        # Signed media links; the app shares one with the key check (api.deps).
        self.links = links if links is not None else MediaLinks.from_settings(settings.api)
        self.image_policy = ImagePolicy.from_settings(settings)
        # The server's one upload budget, shared with MCP over HTTP (see api.app).
        self.uploads = uploads if uploads is not None else Uploads(settings.api)
        self.uploads.attach(pipeline)
        self._snapshots: dict[str, tuple[float, Job]] = {}
        self._reading: dict[str, asyncio.Future[Job]] = {}  # job id -> its read under way
        if metrics is not None:
            pipeline.on_job_finished(self._count_job)
            metrics.watch(pipeline)
            self.uploads.on_submitted.append(lambda _: metrics.jobs_running.inc())

    # --- helpers --------------------------------------------------------------------------
    def _collection(self, principal: Principal, name: str) -> str:
        return access.collection(self.pipeline, principal, name)

    def media_url(self, key: str | None) -> str | None:
        return self._media_url(key) if key else None

    def _media_url(self, key: str) -> str:
        path = f"{MEDIA_PREFIX}{key}"
        base = self.settings.api.public_url
        return base.rstrip("/") + path if base else path

    def _original_url(self, doc_id: str, start: float | None) -> str | None:
        """A timed hit's original video or recording (played from its time)."""
        return self.media_url(original_key(doc_id)) if start is not None and doc_id else None

    def _citation(self, c: Citation) -> s.Citation:
        data = c.to_json()
        data["media_url"] = self.media_url(data.pop("media", None))
        return s.Citation(**data, original_url=self._original_url(c.doc_id, c.start))

    def _hit(self, hit: Hit) -> s.SearchHit:
        return s.SearchHit(**hit.to_json(), media_url=self.media_url(hit.media),
                           original_url=self._original_url(hit.doc_id, hit.start))

    def _image(self, url: str | None, name: str) -> Image.Image | None:
        return query_image(url, self.image_policy, name)

    # --- admission ------------------------------------------------------------------------
    async def admitted(self, method: Callable[..., T], *args: Any) -> T:
        """Run a blocking query method in a worker thread, holding a place among the
        queries served at once (``api.max_queue``) from before the wait for a thread:
        over the bound this raises :class:`~rag.errors.Busy` (429 with Retry-After) at
        once, on the event loop, without taking a thread. The pipeline's own admission
        sees the place held (the worker inherits the context) and does not count twice."""
        with self.pipeline.admit():
            return await run_in_threadpool(method, *args)

    # --- models and chat ------------------------------------------------------------------
    def list_models(self, principal: Principal) -> s.ModelList:
        created = oa.now()
        names = access.visible_names(principal, self.pipeline.collection_names())
        return s.ModelList(data=[s.ModelCard(id=c, created=created) for c in names])

    def get_model(self, model: str, principal: Principal) -> s.ModelCard:
        return s.ModelCard(id=self._collection(principal, model), created=oa.now())

    def _question(
        self, req: s.ChatCompletionRequest, principal: Principal
    ) -> tuple[str, str, Image.Image | None, list[dict[str, object]], Filter | None]:
        collection = self._collection(principal, req.model)
        question, images, history = oa.split_conversation(req.messages)
        if len(images) > 1:
            raise BadInput(
                "one image per question: send at most one image_url part in the last "
                "user message"
            )
        image = self._image(images[0] if images else None, "messages[-1].image_url")
        if not question.strip() and image is None:
            raise BadInput("the last user message has no text and no image")
        flt = req.filter.to_filter() if req.filter else None
        return collection, question, image, history, flt

    def chat(self, req: s.ChatCompletionRequest, principal: Principal) -> s.ChatCompletion:
        collection, question, image, history, flt = self._question(req, principal)
        answer = self.pipeline.ask(collection, question, image, history, flt, req.limit)
        return oa.completion(req.model, answer, self._citation)

    def chat_stream(
        self, req: s.ChatCompletionRequest, principal: Principal
    ) -> Iterator[s.ChatCompletionChunk]:
        """Chunks of a streamed answer. Retrieval and the generator's first event happen
        before this returns, so an unknown collection or an unreachable model server is
        an ordinary error response, not a broken stream."""
        collection, question, image, history, flt = self._question(req, principal)
        events = self.pipeline.ask_stream(collection, question, image, history, flt, req.limit)
        first = next(events, None)
        head: list[GenerationEvent] = [first] if first is not None else []
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return oa.chunks(req.model, itertools.chain(head, events), self._citation, include_usage)

    # --- search ---------------------------------------------------------------------------
    def search(self, req: s.SearchRequest, principal: Principal) -> s.SearchResponse:
        collection = self._collection(principal, req.collection)
        image = self._image(req.image, "image")
        if not (req.query or "").strip() and image is None:
            raise BadInput("a search needs 'query', 'image' (a data URL), or both")
        flt = req.filter.to_filter() if req.filter else None
        hits = self.pipeline.search(collection, req.query, image, req.limit, flt)
        return s.SearchResponse(hits=[self._hit(h) for h in hits])

    # --- collections ----------------------------------------------------------------------
    def create_collection(self, req: s.CollectionCreate, principal: Principal) -> s.CollectionInfo:
        access.require_creatable(principal, req.name)
        created = self.pipeline.ensure_collection(req.name)
        return s.CollectionInfo(name=req.name, points=self.pipeline.count(req.name),
                                created=created)

    def list_collections(self, principal: Principal) -> s.CollectionList:
        rows = access.visible_rows(principal, self.pipeline.collections())
        return s.CollectionList(data=[s.CollectionInfo(**r) for r in rows])

    def drop_collection(self, name: str, principal: Principal) -> s.Deleted:
        self.pipeline.drop(self._collection(principal, name))
        return s.Deleted(object="collection", id=name)

    # --- documents and jobs ---------------------------------------------------------------
    def list_documents(self, name: str, principal: Principal) -> s.DocumentList:
        rows = self.pipeline.documents(self._collection(principal, name))
        return s.DocumentList(data=[s.DocumentInfo(**r) for r in rows])

    def delete_document(self, name: str, source: str, principal: Principal) -> s.Deleted:
        points = self.pipeline.delete_source(self._collection(principal, name), source)
        return s.Deleted(object="document", id=source, points=points)

    async def receive_upload(
        self,
        name: str,
        content_type: str | None,
        content_length: int | None,
        body: AsyncIterator[bytes],
        principal: Principal,
    ) -> s.Job:
        """Stream an upload into a spool on disk and queue its ingest job.

        The caller's access is checked and its share of the in-flight budget taken
        before the body is read, so a request that cannot succeed is refused without
        receiving its files. Whatever goes wrong, a refused upload leaves nothing: its
        spool is removed and its bytes are given back to the budgets.
        """
        access.require_writable(principal, name)
        uploads = self.uploads
        try:
            lease = uploads.admit(content_length)
        except MmragError:
            await drain(body)
            raise
        spool: Path | None = None
        try:
            spool = await run_in_threadpool(self.pipeline.new_spool)
            form = await read_upload(
                content_type, body, spool,
                max_file_bytes=uploads.max_file_bytes, max_files=uploads.max_files,
                on_chunk=lease.on_chunk,
            )
            return await run_in_threadpool(self.upload, name, form, principal)
        except BaseException:
            if spool is not None:
                await run_in_threadpool(self.pipeline.discard_spool, spool)
            raise
        finally:
            lease.release()

    def upload(self, name: str, form: UploadForm, principal: Principal) -> s.Job:
        """Queue the ingest job of a received upload (its files already spooled).

        The collection is created if needed (as ``mmrag ingest`` does). Limits and
        names are checked again here, so the service is safe whatever fed it the form;
        the job's bytes count against the spool bound until it ends.
        """
        access.require_writable(principal, name)
        self.uploads.check_files([(f.filename, f.size) for f in form.files])
        metadata = parse_metadata(form.metadata)
        names = source_names([f.filename for f in form.files])
        job = self.uploads.submit(self.pipeline, name, names, form.spool,
                                  [f.size for f in form.files], metadata)
        return self._job(job)

    def ingest_paths(self, name: str, req: s.PathIngest, principal: Principal) -> s.Job:
        """Ingest files on this machine as a job: only for the local CLI (its token),
        since it reads whatever the server process can read."""
        if not principal.local:
            raise Forbidden(
                "ingesting server-side paths is only for the local mmrag CLI (the token in "
                "the data dir's server.json); upload files instead"
            )
        job = self.pipeline.submit_path_job(name, req.paths, req.cwd, dict(req.metadata),
                                             rebuild=req.rebuild)
        if self.metrics:
            self.metrics.jobs_running.inc()
        return self._job(job)

    def _count_job(self, job: Job) -> None:
        assert self.metrics is not None
        self.metrics.jobs_running.dec()
        for f in job.files:
            self.metrics.ingest_file(f.status)

    def _job(self, job: Job) -> s.Job:
        total = len(job.files)
        return s.Job(
            id=job.id,
            collection=job.collection,
            status=job.status,
            files=[s.FileStatus(**vars(f)) for f in job.files],
            files_done=job.files_done,
            files_total=total,
            progress=(job.files_done / total) if total else 1.0,
            chunks=job.chunks,
            created=job.created,
            finished=job.finished,
            error=job.error,
            url=f"/v1/jobs/{job.id}",
            events_url=f"/v1/jobs/{job.id}/events",
        )

    def get_job(self, job_id: str, principal: Principal) -> s.Job:
        return self._job(access.require_job_visible(principal, self.pipeline.job(job_id)))

    async def job_events(
        self,
        job_id: str,
        principal: Principal,
        poll_s: float = 0.2,
        heartbeat_s: float = 15.0,
    ) -> AsyncIterator[s.Job | None]:
        """The job's state each time it changes, ending with the final state; ``None``
        now and then while nothing changes (a keep-alive for proxies). Call
        :meth:`get_job` first for the 404 before any stream starts."""
        job = await run_in_threadpool(self.get_job, job_id, principal)
        yield job
        seen = await self._snapshot(job_id, poll_s)
        idle = 0.0
        while job.status not in FINAL:
            await asyncio.sleep(poll_s)
            snapshot = await self._snapshot(job_id, poll_s)
            if snapshot is not seen:
                seen = snapshot
                current = self._job(snapshot)
                if current != job:
                    yield current
                    job, idle = current, 0.0
                    continue
            idle += poll_s
            if idle >= heartbeat_s:
                yield None
                idle = 0.0

    async def _snapshot(self, job_id: str, max_age_s: float) -> Job:
        """The job's state, read from disk at most once per ``max_age_s`` however many
        clients follow it (200 followers cost 5 reads a second, not 1,000), in a worker
        thread: a running job is its header plus a log line per finished file, which is
        no work for the event loop. Followers arriving during a read share it."""
        cached = self._snapshots.get(job_id)
        if cached is not None and time.monotonic() - cached[0] < max_age_s / 2:
            return cached[1]
        pending = self._reading.get(job_id)
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            pending = asyncio.ensure_future(run_in_threadpool(self.pipeline.job, job_id))
            self._reading[job_id] = pending
            pending.add_done_callback(lambda done: self._read_done(job_id, done))
        return await asyncio.shield(pending)  # a follower that leaves cancels only itself

    def _read_done(self, job_id: str, done: asyncio.Future[Job]) -> None:
        if self._reading.get(job_id) is done:
            del self._reading[job_id]
        if done.cancelled() or done.exception() is not None:
            return  # the followers awaiting it see the error
        now = time.monotonic()
        self._snapshots[job_id] = (now, done.result())
        if len(self._snapshots) > 256:
            for key, (at, _) in list(self._snapshots.items()):
                if now - at > 60:
                    del self._snapshots[key]

    # --- media ----------------------------------------------------------------------------
    def media(self, key: str, size: int | None, principal: Principal) -> bytes:
        access.require_media_visible(self.pipeline, principal, key)
        return self.pipeline.media_bytes(key, size)

    def original(self, key: str, principal: Principal) -> tuple[Path, str]:
        """The stored original of a video or recording and its mime type."""
        access.require_media_visible(self.pipeline, principal, key)
        return self.pipeline.original_file(key)

    def media_link(self, key: str, principal: Principal) -> s.MediaLink:
        """A URL that plays ``key`` without the Bearer header for a while (for
        ``<video>``/``<audio>``, which cannot send it): only for media that one of the
        caller's collections stores now."""
        access.require_media_held(self.pipeline, principal, key)
        link = self.links.issue(key, principal)
        return s.MediaLink(url=f"{self._media_url(key)}?{link.query}",
                           expires_at=link.expires_at)

    # --- operations -----------------------------------------------------------------------
    def check_metrics_access(self, principal: Principal) -> None:
        require_unrestricted(principal, "/metrics")

    def ready(self) -> s.Health:
        try:
            count = len(self.pipeline.collection_names())
        except MmragError as exc:
            raise NotReady(f"the vector store is not reachable: {exc}") from exc
        except Exception as exc:
            raise NotReady(f"the vector store is not reachable: {one_line(exc)}") from exc
        return s.Health(
            status="ready", collections=count, generator=self.pipeline.generator_name
        )

    def close(self) -> None:
        """Finish the running job (queued ones resume at the next start), close the store."""
        self.pipeline.close()
