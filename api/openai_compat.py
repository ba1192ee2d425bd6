"""Between the OpenAI chat format and the pipeline's question/answer types. Pure.

A conversation becomes (question, question images, earlier turns); an :class:`Answer`
or a stream of generation events becomes OpenAI's ``chat.completion`` objects and
``chat.completion.chunk`` events, with our ``citations`` added (media keys turned into
URLs by the caller's ``citation`` function, since only ``api/`` knows URLs).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal

from api import schemas as s
from rag.errors import BadInput
from rag.types import Answer, Citation, Delta, Done, GenerationEvent

CHUNK: Literal["chat.completion.chunk"] = "chat.completion.chunk"

CitationFn = Callable[[Citation], s.Citation]


def now() -> int:
    return int(time.time())


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


def usage(answer: Answer) -> s.Usage:
    """What the generator measured; zeros where it measured nothing (extractive)."""
    prompt = int(answer.usage.get("prompt_tokens", 0))
    completion = int(answer.usage.get("completion_tokens", 0))
    total = int(answer.usage.get("total_tokens", prompt + completion))
    return s.Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total)


def completion(model: str, answer: Answer, citation: CitationFn) -> s.ChatCompletion:
    return s.ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=now(),
        model=model,
        choices=[s.Choice(message=s.AssistantMessage(content=answer.text))],
        usage=usage(answer),
        citations=[citation(c) for c in answer.citations],
        generator=answer.model,
    )


def chunks(
    model: str,
    events: Iterator[GenerationEvent],
    citation: CitationFn,
    include_usage: bool = False,
) -> Iterator[s.ChatCompletionChunk]:
    """OpenAI stream chunks: a role chunk, one per text delta, a final chunk with
    ``finish_reason`` and our citations, and (when asked) a usage-only chunk."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", now()

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
    yield chunk(s.ChunkDelta(), finish="stop",
                citations=[citation(c) for c in answer.citations])
    if include_usage:
        yield s.ChatCompletionChunk(
            id=cid, object=CHUNK, created=created, model=model, choices=[],
            usage=usage(answer),
        )
