"""LangChain adapters over a :class:`~pipeline.Pipeline`, for in-process use.

- :class:`MmragRetriever`: a ``BaseRetriever`` whose ``Document`` metadata carries the
  same citation fields the API returns (source, page, modality, box, media URL), so a
  LangChain chain can cite as precisely as mmrag itself.
- :func:`as_runnable`: the whole question -> cited answer step as a ``Runnable``, for
  chains that want mmrag's retrieval *and* generation (``chain.invoke("question")``).

LangChain types stop here: the pipeline never sees a ``Document``. (A client that talks to
the server instead needs nothing from this module: ``ChatOpenAI(base_url=...,
model=collection)`` works against ``/v1/chat/completions``.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import ConfigDict

from rag.errors import BadInput
from rag.types import Answer, Filter, Hit, union_box

if TYPE_CHECKING:
    from pipeline import Pipeline


def hit_to_document(hit: Hit) -> Document:
    """A hit as a ``Document``: text as content, everything needed to cite it as metadata."""
    box = union_box(hit.boxes)
    return Document(
        id=hit.id,
        page_content=hit.text,
        metadata={
            "source": hit.source,
            "page": hit.page,
            "modality": hit.modality,
            "score": hit.score,
            "doc_id": hit.doc_id,
            "chunk": hit.chunk,
            "mime": hit.mime,
            "media": hit.media,
            "media_url": f"/v1/media/{hit.media}" if hit.media else None,
            "box": list(box) if box else None,
            **{f"meta_{k}": v for k, v in hit.metadata.items()},
        },
    )


def answer_to_dict(answer: Answer) -> dict[str, Any]:
    """An :class:`~rag.types.Answer` as plain JSON-able data (what the API returns)."""
    return answer.to_json()


class MmragRetriever(BaseRetriever):
    """Hybrid search over one collection. ``filter`` restricts it like the API's filter."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: Any  # pipeline.Pipeline (Any: pydantic need not inspect it)
    collection: str
    limit: int | None = None
    filter: Filter | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        hits = self.pipeline.search(self.collection, query, None, self.limit, self.filter)
        return [hit_to_document(h) for h in hits]


def _parse_input(value: Any) -> tuple[str, Any, list[dict[str, Any]] | None]:
    if isinstance(value, str):
        return value, None, None
    if isinstance(value, dict):
        question = value.get("question", value.get("query", value.get("input")))
        if not isinstance(question, str):
            raise BadInput("the runnable's input needs a 'question' string")
        return question, value.get("image"), value.get("history")
    raise BadInput(
        f"the runnable takes a question string or {{'question': ...}}, not {type(value).__name__}"
    )


def as_runnable(
    pipeline: Pipeline, collection: str, *, limit: int | None = None,
    flt: Filter | None = None,
) -> Runnable[Any, dict[str, Any]]:
    """Question in, cited answer out, as a ``Runnable``.

    Input: a string, or ``{"question": str, "image": PIL.Image?, "history": [messages]?}``.
    Output: :func:`answer_to_dict` of the pipeline's answer.
    """

    def ask(value: Any) -> dict[str, Any]:
        question, image, history = _parse_input(value)
        return answer_to_dict(pipeline.ask(collection, question, image, history, flt, limit))

    return RunnableLambda(ask, name=f"mmrag[{collection}]")
