"""Answers from any OpenAI-compatible chat endpoint: vLLM, Ollama, llama.cpp, OpenAI.

Retrieved images travel inline as data URLs, so the server needs no access to our media
store. The ``openai`` SDK's types and exceptions stay in this module: callers see
:class:`~rag.types.Answer`, our events, and :class:`~rag.errors.UpstreamError` whose
message names the endpoint and the setting to check.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
from openai import OpenAI
from PIL import Image

from rag.errors import UpstreamError
from rag.generate.base import Delta, Done, GenerationEvent, finish, prepare
from rag.generate.openai_client import LazyOpenAI
from rag.media import MediaStore
from rag.settings import GeneratorSettings
from rag.types import Answer, Hit

_DETAIL_CHARS = 300


def _detail(exc: openai.APIStatusError) -> str:
    """The server's own error text, shortened; falls back to the SDK message."""
    body = exc.body
    message: Any = None
    if isinstance(body, dict):
        err = body.get("error", body)
        message = err.get("message") if isinstance(err, dict) else err
        message = message or body.get("detail") or body.get("message")
    text = " ".join(str(message or exc.message or "").split())
    return text[:_DETAIL_CHARS] + ("…" if len(text) > _DETAIL_CHARS else "")


def _usage(usage: Any) -> dict[str, int]:
    """Token counts the server reported, as plain ints (absent fields left out)."""
    out: dict[str, int] = {}
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        value = getattr(usage, name, None)
        if isinstance(value, int):
            out[name] = value
    return out


class OpenAIGenerator:
    """A VLM behind ``generator.openai.base_url``, called through the official SDK."""

    def __init__(
        self,
        settings: GeneratorSettings,
        media: MediaStore | None = None,
        *,
        max_retries: int = 2,
    ) -> None:
        self.settings = settings
        self.media = media
        self.max_retries = max_retries
        self._openai = LazyOpenAI(lambda: self.settings.openai, max_retries)

    @property
    def client(self) -> OpenAI:
        return self._openai.get()

    def load(self) -> None:
        """Nothing to load locally; the model lives on the server."""

    def _request(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        s = self.settings.openai
        return {
            "model": s.model,
            "messages": messages,
            "temperature": s.temperature,
            "max_tokens": s.max_tokens,
        }

    def generate(
        self,
        question: str,
        hits: list[Hit],
        history: list[dict[str, Any]] | None = None,
        image: Image.Image | None = None,
    ) -> Answer:
        prepared = prepare(question, hits, history, self.settings, self.media, image)
        try:
            response = self.client.chat.completions.create(
                **self._request(prepared.messages), stream=False
            )
        except openai.OpenAIError as exc:
            raise self._upstream_error(exc) from exc
        if not response.choices:
            raise self._empty("answered with no choices")
        choice = response.choices[0]
        text = choice.message.content if choice.message else None
        if not text:
            raise self._empty(f"answered with no text (finish_reason={choice.finish_reason!r})")
        return finish(
            text,
            prepared,
            response.model or self.settings.openai.model,
            _usage(response.usage) if response.usage else None,
        )

    def stream(
        self,
        question: str,
        hits: list[Hit],
        history: list[dict[str, Any]] | None = None,
        image: Image.Image | None = None,
    ) -> Iterator[GenerationEvent]:
        """Deltas as the server sends them; usage arrives in the last chunk when the
        server honours ``stream_options.include_usage`` (vLLM, OpenAI, recent Ollama)."""
        prepared = prepare(question, hits, history, self.settings, self.media, image)
        model = self.settings.openai.model
        usage: dict[str, int] = {}
        parts: list[str] = []
        try:
            chunks = self.client.chat.completions.create(
                **self._request(prepared.messages),
                stream=True,
                stream_options={"include_usage": True},
            )
            # Closing the stream closes the HTTP response, also when the consumer stops
            # early (a client that disconnects mid-answer).
            with chunks:
                for chunk in chunks:
                    model = chunk.model or model
                    if chunk.usage:
                        usage = _usage(chunk.usage)
                    for choice in chunk.choices:
                        content = choice.delta.content if choice.delta else None
                        if choice.index == 0 and content:
                            parts.append(content)
                            yield Delta(content)
        except openai.OpenAIError as exc:
            raise self._upstream_error(exc) from exc
        if not parts:
            raise self._empty("streamed no text")
        yield Done(finish("".join(parts), prepared, model, usage))

    # ---------------------------------------------------------------- error messages

    def _empty(self, what: str) -> UpstreamError:
        s = self.settings.openai
        return UpstreamError(
            f"the generator at {s.base_url} (model {s.model!r}) {what}: check the server's "
            "logs, and that generator.openai.max_tokens leaves room for an answer"
        )

    def _upstream_error(self, exc: openai.OpenAIError) -> UpstreamError:
        """One message per failure kind: what happened, at which URL, what to check."""
        s = self.settings.openai
        url, model = s.base_url, s.model
        if isinstance(exc, openai.APITimeoutError):
            return UpstreamError(
                f"the generator at {url} did not answer within {s.timeout_s:g}s: check that "
                "the server is up and not overloaded (first requests may load the model), "
                "or raise generator.openai.timeout_s (MMRAG_GENERATOR__OPENAI__TIMEOUT_S)"
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return UpstreamError(
                f"cannot connect to the generator at {url} ({type(cause).__name__}: {cause}): "
                "check that the OpenAI-compatible server (vLLM, Ollama, llama.cpp, ...) is "
                "running and that generator.openai.base_url "
                "(MMRAG_GENERATOR__OPENAI__BASE_URL) points at it, including the /v1 suffix"
            )
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return UpstreamError(
                f"the generator at {url} rejected the API key (HTTP {exc.status_code}: "
                f"{_detail(exc)}): set generator.openai.api_key "
                "(MMRAG_GENERATOR__OPENAI__API_KEY)"
            )
        if isinstance(exc, openai.NotFoundError):
            return UpstreamError(
                f"the generator at {url} answered HTTP 404 ({_detail(exc)}): check that "
                f"model {model!r} is served there (GET {url.rstrip('/')}/models) and that "
                "generator.openai.base_url ends with /v1"
            )
        if isinstance(exc, openai.RateLimitError):
            return UpstreamError(
                f"the generator at {url} is rate limiting (HTTP 429: {_detail(exc)}): "
                "retry later or lower the request rate"
            )
        if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
            return UpstreamError(
                f"the generator at {url} rejected the request (HTTP {exc.status_code}: "
                f"{_detail(exc)}): check that model {model!r} accepts images (a "
                "vision-language model) and that the prompt fits its context window "
                "(lower generator.max_context_chars or generator.max_images)"
            )
        if isinstance(exc, openai.APIStatusError):
            return UpstreamError(
                f"the generator at {url} failed with HTTP {exc.status_code} "
                f"({_detail(exc)}): check the server's logs"
            )
        return UpstreamError(
            f"the generator at {url} returned a response mmrag could not read "
            f"({type(exc).__name__}: {exc}): check that it is an OpenAI-compatible "
            "chat completions endpoint"
        )
