"""Service rules that need no server: conversations, stream errors, public URLs."""

from __future__ import annotations

import json
from pathlib import Path

from api import schemas as s
from api import sse
from api.openai_compat import split_conversation
from api.service import RagService
from pipeline import Pipeline
from rag.errors import UpstreamError
from tests.conftest import offline


def msgs(*items: dict[str, object]) -> list[s.ChatMessage]:
    return [s.ChatMessage.model_validate(m) for m in items]


def test_conversation_split() -> None:
    question, images, history = split_conversation(msgs(
        {"role": "developer", "content": "be terse"},
        {"role": "user", "content": [
            {"type": "text", "text": "look at this"},
            {"type": "image_url", "image_url": {"url": "http://evil.test/x.png"}},
        ]},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "tool", "content": "tool output"},
        {"role": "assistant", "content": "It is a router."},
        {"role": "user", "content": [
            {"type": "text", "text": "what about"}, {"type": "text", "text": "its port?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ]},
    ))
    assert question == "what about\nits port?"
    assert images == ["data:image/png;base64,AAAA"]
    # Earlier images never reach the generator (it would forward their URLs unchecked).
    assert history == [
        {"role": "system", "content": "be terse"},
        {"role": "user", "content": "look at this"},
        {"role": "assistant", "content": "It is a router."},
    ]


def test_error_after_the_stream_started_is_an_openai_error_event() -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield s.ChatCompletionChunk(
            id="c", object="chat.completion.chunk", created=1, model="m",
            choices=[s.ChunkChoice(index=0, delta=s.ChunkDelta(content="Hel"),
                                  finish_reason=None)],
        )
        raise UpstreamError("the model server at http://vlm:8000 went away")

    events = list(sse.chat_events(chunks()))
    first = json.loads(events[0].removeprefix("data: "))
    assert first["choices"][0] == {"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}
    assert "usage" not in first and "citations" not in first
    error = json.loads(events[1].removeprefix("data: "))["error"]
    assert error["code"] == "upstream_error" and "went away" in error["message"]
    assert events[-1] == "data: [DONE]\n\n"


def test_public_url_makes_media_links_absolute(tmp_path: Path) -> None:
    settings = offline(tmp_path, api={"public_url": "https://rag.example.com/"})
    service = RagService(settings, Pipeline(settings))
    try:
        assert service.media_url("abc-p1") == "https://rag.example.com/v1/media/abc-p1"
        assert service.media_url(None) is None
    finally:
        service.close()
