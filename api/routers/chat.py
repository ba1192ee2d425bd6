"""``POST /v1/chat/completions``: OpenAI Chat Completions, answered from a collection."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api import schemas as s
from api import sse
from api.deps import PrincipalDep, ServiceDep
from api.errors import responses
from api.routers import V1, json_response

router = APIRouter(prefix=V1, tags=["chat"])


@router.post(
    "/chat/completions",
    response_model=s.ChatCompletion,
    responses={200: {"content": {"text/event-stream": {}}},
               **responses(400, 404, 413, 415, 422, 429, 502)},
)
async def create_chat_completion(
    body: s.ChatCompletionRequest, service: ServiceDep, principal: PrincipalDep
) -> Response:
    """``model`` is the collection; the last user message (text and at most one image)
    is the question; ``stream: true`` answers as ``chat.completion.chunk`` events."""
    if body.stream:
        return sse.chat_stream(await service.admitted(service.chat_stream, body, principal))
    return json_response(await service.admitted(
        lambda: service.chat(body, principal).model_dump_json()))
