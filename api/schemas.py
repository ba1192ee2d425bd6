"""Request and response models of the HTTP API.

The chat models follow OpenAI's Chat Completions format closely enough that the
official SDKs, LangChain's ``ChatOpenAI`` and other OpenAI clients work unchanged; the
fields OpenAI defines that a retrieval service cannot honour (``temperature``,
``max_tokens``, ``tools``, ...) are accepted and ignored rather than rejected, because
clients send them by default. Our additions (``citations`` on responses, ``filter`` and
``limit`` on requests) are extra fields that those clients pass through untouched.

Our own request bodies (search, collections) forbid unknown fields, so a typo such as
``"limt"`` is a 422 instead of being silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The filter schema is shared with MCP, so it lives with the rules every surface applies.
from policy.filters import SearchFilter


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- shared


class Citation(BaseModel):
    index: int
    source: str
    page: int
    modality: str
    text: str
    score: float
    doc_id: str = ""
    chunk: int = 0
    box: list[float] | None = None
    media_url: str | None = None
    # Seconds on a video's or recording's timeline (null for pages and pictures), and the
    # original file to play from ``start`` (served with HTTP Range).
    start: float | None = None
    end: float | None = None
    original_url: str | None = None


class ListObject(BaseModel):
    object: Literal["list"] = "list"


# --------------------------------------------------------------------------- chat


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ImageUrl(BaseModel):
    url: str
    detail: str | None = None


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """``model`` names the collection to answer from."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    # mmrag extensions (openai SDK: extra_body={"filter": {...}, "limit": 5})
    filter: SearchFilter | None = None
    limit: int | None = Field(default=None, ge=1, le=100)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    citations: list[Citation]
    # Which generator answered ("extractive" when no language model is configured).
    generator: str = ""


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int  # required, like ``object`` below: ``exclude_unset`` would drop a default
    delta: ChunkDelta
    finish_reason: Literal["stop"] | None = None


class ChatCompletionChunk(BaseModel):
    """Serialised with ``exclude_unset`` so each chunk carries only what it sets."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    citations: list[Citation] | None = None


# --------------------------------------------------------------------------- models


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "mmrag"


class ModelList(ListObject):
    data: list[ModelCard]


# --------------------------------------------------------------------------- search


class SearchRequest(_Strict):
    collection: str = Field(min_length=1)
    query: str | None = None
    image: str | None = Field(default=None, description="a data URL (or allow-listed URL)")
    limit: int | None = Field(default=None, ge=1, le=1000)
    filter: SearchFilter | None = None


class SearchHit(BaseModel):
    id: str
    source: str
    page: int
    modality: str
    score: float
    text: str
    chunk: int
    doc_id: str
    media: str | None
    media_url: str | None
    boxes: list[dict[str, Any]]
    metadata: dict[str, Any]
    # Seconds on a video's or recording's timeline (null for pages and pictures), and the
    # original file to play from ``start`` (served with HTTP Range).
    start: float | None = None
    end: float | None = None
    original_url: str | None = None


class SearchResponse(BaseModel):
    hits: list[SearchHit]


# --------------------------------------------------------------------------- collections


class CollectionCreate(_Strict):
    name: str = Field(min_length=1, max_length=64)


class CollectionInfo(BaseModel):
    name: str
    object: Literal["collection"] = "collection"
    points: int
    created: bool | None = None


class CollectionList(ListObject):
    data: list[CollectionInfo]


class Deleted(BaseModel):
    object: str
    id: str
    deleted: bool = True
    points: int | None = None


# --------------------------------------------------------------------------- documents


class PathIngest(_Strict):
    """Files and folders on the server's machine, for the local CLI (see server.json)."""

    paths: list[str] = Field(min_length=1, max_length=10_000)
    cwd: str = Field(description="the caller's working directory; relative paths are "
                     "read from it and keep their names as given")
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict)
    rebuild: bool = Field(default=False, description="write stored documents again even "
                          "when they are current (mmrag ingest --rebuild)")


class DocumentInfo(BaseModel):
    source: str
    doc_id: str
    mime: str
    points: int
    pages: int


class DocumentList(ListObject):
    data: list[DocumentInfo]


class FileStatus(BaseModel):
    source: str
    status: str
    points: int = 0
    chunks: int = 0
    doc_id: str = ""
    error: str | None = None
    # Why a ``rebuilt`` file was written again ("ocr changed", "rebuild requested").
    reason: str | None = None


class Job(BaseModel):
    id: str
    object: Literal["ingest.job"] = "ingest.job"
    collection: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    files: list[FileStatus]
    files_done: int
    files_total: int
    progress: float = Field(description="files done / files total, 0..1")
    chunks: int
    created: float
    finished: float | None = None
    error: str | None = None
    url: str
    events_url: str


# --------------------------------------------------------------------------- media


class MediaLink(BaseModel):
    """A signed link to one media file: plays without the Bearer header until
    ``expires_at`` (Unix seconds)."""

    object: Literal["media.link"] = "media.link"
    url: str
    expires_at: int


# --------------------------------------------------------------------------- health


class Health(BaseModel):
    status: Literal["ok", "ready"]
    collections: int | None = None
    generator: str | None = None
