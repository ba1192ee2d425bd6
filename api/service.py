"""The API's behaviour, one method per route, with no HTTP in sight.

Routers translate requests into calls here and results back into responses; everything
that decides something (who may see what, how a conversation becomes a question, what
an upload is called, when a job counts as finished) lives here, where it can be read
and tested without a server. Methods take the request schemas and a
:class:`~api.auth.Principal`, return response schemas (or iterators of them for
streams), and raise :mod:`rag.errors` types, which ``api/errors.py`` maps to statuses.

Most methods block (models, the vector store), so the routers are plain ``def``
functions that FastAPI runs in its thread pool; the event loop only moves bytes.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

from api import schemas as s
from api.auth import (
    Principal,
    collection_not_found,
    require_unrestricted,
    require_visible,
)
from api.errors import NotReady
from api.images import ImagePolicy, load_image
from api.metrics import Metrics
from api.uploads import UploadForm, source_names
from ingest.runner import FileItem, JobStore
from ingest.runner import Job as JobState
from rag.errors import BadInput, Forbidden, LimitExceeded, MmragError, NotFound, one_line
from rag.generate.base import Delta, Done, GenerationEvent
from rag.settings import Settings
from rag.types import Answer, Filter, Hit

if TYPE_CHECKING:
    from PIL import Image

    from rag.pipeline import Pipeline

log = logging.getLogger("mmrag.api")

FINAL = ("done", "failed")
CHUNK: Literal["chat.completion.chunk"] = "chat.completion.chunk"
MAX_METADATA_KEYS = 64


def _now() -> int:
    return int(time.time())


def parse_metadata(raw: str | None) -> dict[str, Any]:
    """The ``metadata`` form field: a flat JSON object of scalars (filterable values)."""
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadInput(f"metadata must be a JSON object ({exc})") from None
    if not isinstance(value, dict):
        raise BadInput("metadata must be a JSON object, e.g. {\"team\": \"ops\"}")
    if len(value) > MAX_METADATA_KEYS:
        raise BadInput(f"metadata has {len(value)} keys; the limit is {MAX_METADATA_KEYS}")
    for key, item in value.items():
        if not isinstance(item, str | int | float | bool):
            raise BadInput(
                f"metadata[{key!r}] must be a string, number or boolean so it can be "
                "filtered on"
            )
    return value


def split_conversation(
    messages: list[s.ChatMessage],
) -> tuple[str, list[str], list[dict[str, Any]]]:
    """(question, image URLs of the question, earlier turns) of an OpenAI conversation.

    The last message must be the user's: it is the question. Earlier turns go to the
    pipeline as text only; their images are dropped, because the generator would
    forward any URL in them to the model server unchecked, and retrieval condenses
    the conversation from text anyway.
    """
    last = messages[-1]
    if last.role != "user":
        raise BadInput(
            f"the last message must come from the user (it is the question); got {last.role!r}"
        )
    question, images = _content(last.content)
    history: list[dict[str, Any]] = []
    for message in messages[:-1]:
        role = "system" if message.role == "developer" else message.role
        if role not in ("system", "user", "assistant"):
            continue
        text, _ = _content(message.content)
        if text.strip():
            history.append({"role": role, "content": text})
    return question, images, history


def _content(content: str | list[Any] | None) -> tuple[str, list[str]]:
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    text = "\n".join(p.text for p in content if isinstance(p, s.TextPart) and p.text)
    images = [p.image_url.url for p in content if isinstance(p, s.ImagePart)]
    return text, images


def _usage(answer: Answer) -> s.Usage:
    """What the generator measured; zeros where it measured nothing (extractive)."""
    prompt = int(answer.usage.get("prompt_tokens", 0))
    completion = int(answer.usage.get("completion_tokens", 0))
    total = int(answer.usage.get("total_tokens", prompt + completion))
    return s.Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


class RagService:
    """Everything the routes do, over one :class:`~rag.pipeline.Pipeline`."""

    def __init__(
        self,
        settings: Settings,
        pipeline: Pipeline,
        jobs: JobStore,
        metrics: Metrics | None = None,
        job_workers: int = 1,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.jobs = jobs
        self.metrics = metrics
        self.image_policy = ImagePolicy.from_settings(settings)
        # One writer at a time is what the store can use anyway (the runner locks per
        # collection); more workers would only interleave progress.
        self._executor = ThreadPoolExecutor(job_workers, thread_name_prefix="mmrag-ingest")
        self._live: dict[str, Future[None]] = {}
        self._live_lock = threading.Lock()

    # --- helpers --------------------------------------------------------------------------
    def _collection(self, principal: Principal, name: str) -> str:
        """``name`` if it exists and ``principal`` may use it; one 404 for both failures."""
        require_visible(principal, name)
        if name not in self.pipeline.store.collections():
            raise collection_not_found(name)
        return name

    def media_url(self, key: str | None) -> str | None:
        if not key:
            return None
        path = f"/v1/media/{key}"
        base = self.settings.api.public_url
        return base.rstrip("/") + path if base else path

    def _citations(self, answer: Answer) -> list[s.Citation]:
        out = []
        for c in answer.citations:
            data = c.to_json()
            if data.get("media_url") and self.settings.api.public_url:
                data["media_url"] = self.settings.api.public_url.rstrip("/") + data["media_url"]
            out.append(s.Citation(**data))
        return out

    def _hit(self, hit: Hit) -> s.SearchHit:
        return s.SearchHit(**hit.to_json(), media_url=self.media_url(hit.media))

    def _image(self, url: str | None, name: str) -> Image.Image | None:
        return load_image(url, self.image_policy, name) if url else None

    # --- models and chat ------------------------------------------------------------------
    def list_models(self, principal: Principal) -> s.ModelList:
        created = _now()
        names = [c for c in self.pipeline.store.collections() if principal.can_see(c)]
        return s.ModelList(data=[s.ModelCard(id=c, created=created) for c in names])

    def get_model(self, model: str, principal: Principal) -> s.ModelCard:
        return s.ModelCard(id=self._collection(principal, model), created=_now())

    def _question(
        self, req: s.ChatCompletionRequest, principal: Principal
    ) -> tuple[str, str, Image.Image | None, list[dict[str, Any]], Filter | None]:
        collection = self._collection(principal, req.model)
        question, images, history = split_conversation(req.messages)
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
        return s.ChatCompletion(
            id=f"chatcmpl-{uuid.uuid4().hex}",
            created=_now(),
            model=req.model,
            choices=[s.Choice(message=s.AssistantMessage(content=answer.text))],
            usage=_usage(answer),
            citations=self._citations(answer),
            generator=answer.model,
        )

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
        return self._chunks(req, itertools.chain(head, events))

    def _chunks(
        self, req: s.ChatCompletionRequest, events: Iterator[GenerationEvent]
    ) -> Iterator[s.ChatCompletionChunk]:
        cid, created, model = f"chatcmpl-{uuid.uuid4().hex}", _now(), req.model

        def chunk(delta: s.ChunkDelta, **extra: Any) -> s.ChatCompletionChunk:
            choice = s.ChunkChoice(index=0, delta=delta, finish_reason=extra.pop("finish", None))
            return s.ChatCompletionChunk(
                id=cid, object=CHUNK, created=created, model=model, choices=[choice], **extra
            )

        yield chunk(s.ChunkDelta(role="assistant", content=""))
        answer: Answer | None = None
        for event in events:
            if isinstance(event, Delta) and event.text:
                yield chunk(s.ChunkDelta(content=event.text))
            elif isinstance(event, Done):
                answer = event.answer
        if answer is None:
            raise RuntimeError("the generator's stream ended without a final answer")
        yield chunk(s.ChunkDelta(), finish="stop", citations=self._citations(answer))
        if req.stream_options and req.stream_options.include_usage:
            yield s.ChatCompletionChunk(
                id=cid, object=CHUNK, created=created, model=model, choices=[],
                usage=_usage(answer),
            )

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
        if not principal.can_see(req.name):
            # Naming a collection to create reveals nothing about what exists: 403.
            raise Forbidden(f"this API key may not create collection {req.name!r}")
        existed = req.name in self.pipeline.store.collections()
        self.pipeline.runner.ensure(req.name)
        return s.CollectionInfo(
            name=req.name, points=self.pipeline.store.count(req.name), created=not existed
        )

    def list_collections(self, principal: Principal) -> s.CollectionList:
        rows = [r for r in self.pipeline.collections() if principal.can_see(r["name"])]
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

    def check_upload(self, name: str, principal: Principal) -> None:
        """Called before the body is read, so a request that cannot succeed is refused
        without receiving its files."""
        require_visible(principal, name)

    def upload(self, name: str, form: UploadForm, principal: Principal) -> s.Job:
        """Queue an ingest job for files already in memory; returns at once.

        The collection is created if needed (as ``mmrag ingest`` does). Limits are
        checked again here, so the service is safe whatever fed it the form.
        """
        require_visible(principal, name)
        api = self.settings.api
        if len(form.files) > api.max_files_per_request:
            raise LimitExceeded(
                f"{len(form.files)} files in one request; the limit is "
                f"{api.max_files_per_request} (api.max_files_per_request)"
            )
        for f in form.files:
            if len(f.data) > api.max_upload_bytes:
                raise LimitExceeded(
                    f"{f.filename}: {len(f.data):,} bytes is over the {api.max_upload_bytes:,} "
                    "byte upload limit (api.max_upload_bytes)"
                )
        metadata = parse_metadata(form.metadata)
        self.pipeline.runner.ensure(name)
        names = source_names([f.filename for f in form.files])
        job = self.jobs.new(name, names)
        items: list[FileItem] = [
            (source, _constant(f.data)) for source, f in zip(names, form.files, strict=True)
        ]
        with self._live_lock:
            self._live[job.id] = self._executor.submit(self._run_job, job, items, metadata)
        return self._job(job)

    def _run_job(self, job: JobState, items: list[FileItem], metadata: dict[str, Any]) -> None:
        if self.metrics:
            self.metrics.jobs_running.inc()
        try:
            self.jobs.run(self.pipeline.runner, job, items, metadata=metadata)
        except Exception as exc:  # a bug must still end the job, or pollers wait forever
            log.exception("ingest job %s crashed", job.id)
            job.status, job.finished = "failed", time.time()
            job.error = f"internal error: {one_line(exc)}"
            self.jobs.save(job)
        finally:
            if self.metrics:
                self.metrics.jobs_running.dec()
                for f in job.files:
                    self.metrics.ingest_file(f.status)
            with self._live_lock:
                self._live.pop(job.id, None)

    def _job(self, job: JobState) -> s.Job:
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

    def _load_job(self, job_id: str, principal: Principal) -> JobState:
        job = self.jobs.get(job_id)
        if not principal.can_see(job.collection):
            raise NotFound(f"job {job_id!r} does not exist")
        with self._live_lock:
            live = job_id in self._live
        if job.status not in FINAL and not live:
            # Queued or running in a process that is gone: say so instead of "running"
            # forever (re-read first: it may have finished since).
            job = self.jobs.get(job_id)
            if job.status not in FINAL:
                job.status, job.finished = "failed", time.time()
                job.error = "interrupted: the server stopped before the job finished; upload again"
                self.jobs.save(job)
        return job

    def get_job(self, job_id: str, principal: Principal) -> s.Job:
        return self._job(self._load_job(job_id, principal))

    def job_events(
        self,
        job_id: str,
        principal: Principal,
        poll_s: float = 0.2,
        heartbeat_s: float = 15.0,
    ) -> Iterator[s.Job | None]:
        """The job's state each time it changes, ending with the final state; ``None``
        now and then while nothing changes (a keep-alive for proxies)."""
        first = self.get_job(job_id, principal)  # 404 now, before any stream starts
        return self._follow(first, principal, poll_s, heartbeat_s)

    def _follow(
        self, last: s.Job, principal: Principal, poll_s: float, heartbeat_s: float
    ) -> Iterator[s.Job | None]:
        yield last
        idle = 0.0
        while last.status not in FINAL:
            time.sleep(poll_s)
            current = self.get_job(last.id, principal)
            if current != last:
                yield current
                last, idle = current, 0.0
            else:
                idle += poll_s
                if idle >= heartbeat_s:
                    yield None
                    idle = 0.0

    # --- media ----------------------------------------------------------------------------
    def media(self, key: str, size: int | None, principal: Principal) -> bytes:
        if not principal.unrestricted:
            self._check_media(key, principal)
        return self.pipeline.media.read_bytes(key, size)

    def _check_media(self, key: str, principal: Principal) -> None:
        """A scoped key sees an image only if one of its collections stores that document
        (media keys are ``<doc_id>-p<page>``, shared across collections)."""
        doc_id = key.rsplit("-p", 1)[0]
        for name in self.pipeline.store.collections():
            if principal.can_see(name) and self.pipeline.store.count(name, Filter(doc_id=doc_id)):
                return
        raise NotFound(f"media {key!r} does not exist")

    # --- operations -----------------------------------------------------------------------
    def check_metrics_access(self, principal: Principal) -> None:
        require_unrestricted(principal, "/metrics")

    def ready(self) -> s.Health:
        try:
            count = len(self.pipeline.store.collections())
        except MmragError as exc:
            raise NotReady(f"the vector store is not reachable: {exc}") from exc
        except Exception as exc:
            raise NotReady(f"the vector store is not reachable: {one_line(exc)}") from exc
        return s.Health(
            status="ready", collections=count, generator=self.settings.generator.backend
        )

    def close(self) -> None:
        """Finish the running job, drop queued ones (marked failed), close the store."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._live_lock:
            stale = list(self._live)
            self._live.clear()
        for job_id in stale:
            try:
                job = self.jobs.get(job_id)
            except NotFound:
                continue
            if job.status not in FINAL:
                job.status, job.finished = "failed", time.time()
                job.error = "cancelled: the server shut down before the job started"
                self.jobs.save(job)
        self.pipeline.close()


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data
