"""Server-sent events: OpenAI-style chat chunks and ingest job progress.

Chat streams are plain sync iterators (the pipeline blocks), which Starlette drains in
its thread pool; job streams are async (they only poll), so followers hold no thread.
An error after the first byte cannot change the status code any more, so it is sent the
way OpenAI does: a ``data:`` event holding ``{"error": {...}}`` (the openai SDK raises
it as an ``APIError``), then the stream ends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.errors import payload_for
from api.schemas import Job

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def chat_events(chunks: Iterator[BaseModel]) -> Iterator[str]:
    try:
        for chunk in chunks:
            yield f"data: {chunk.model_dump_json(exclude_unset=True)}\n\n"
    except Exception as exc:
        _, body = payload_for(exc)
        yield f"data: {json.dumps(body)}\n\n"
    yield "data: [DONE]\n\n"


def chat_stream(chunks: Iterator[BaseModel]) -> StreamingResponse:
    return StreamingResponse(
        chat_events(chunks), media_type="text/event-stream", headers=HEADERS
    )


async def job_events(events: AsyncIterator[Job | None]) -> AsyncIterator[str]:
    n = 0
    try:
        async for job in events:
            if job is None:
                yield ": keep-alive\n\n"
                continue
            n += 1
            kind = "done" if job.status in ("done", "failed", "cancelled") else "progress"
            yield f"id: {n}\nevent: {kind}\ndata: {job.model_dump_json()}\n\n"
    except Exception as exc:
        _, body = payload_for(exc)
        yield f"event: error\ndata: {json.dumps(body)}\n\n"


def job_stream(events: AsyncIterator[Job | None]) -> StreamingResponse:
    return StreamingResponse(
        job_events(events), media_type="text/event-stream", headers=HEADERS
    )
