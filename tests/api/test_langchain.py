"""The LangChain adapters over the server's own pipeline (same process)."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document

from api.langchain import MmragRetriever, as_runnable
from rag.errors import BadInput
from rag.types import Filter
from tests.api.conftest import COLLECTION, Server

# Real uvicorn servers on loopback: the slow tier (make test-slow).
pytestmark = pytest.mark.slow

def test_retriever_returns_documents_with_citation_metadata(server: Server) -> None:
    retriever = MmragRetriever(pipeline=server.pipeline, collection=COLLECTION, limit=3)
    docs = retriever.invoke("how often are the piston seals replaced")
    assert docs and all(isinstance(d, Document) for d in docs)
    top = docs[0]
    assert top.metadata["source"] == "corpus/press.pdf"
    assert top.metadata["page"] == 1
    assert {"modality", "score", "doc_id", "chunk", "media_url", "box"} <= set(top.metadata)
    assert "piston seals" in top.page_content


def test_retriever_filter(server: Server) -> None:
    retriever = MmragRetriever(pipeline=server.pipeline, collection=COLLECTION,
                               filter=Filter(modality=["image"]))
    docs = retriever.invoke("parcel Rotterdam")
    assert docs and all(d.metadata["modality"] == "image" for d in docs)
    assert docs[0].metadata["box"] is not None  # OCR lines give the region
    assert docs[0].metadata["media_url"].startswith("/v1/media/")


def test_runnable_answers_with_citations(server: Server) -> None:
    chain = as_runnable(server.pipeline, COLLECTION)
    out = chain.invoke("How do I rotate TLS certificates?")
    assert "certctl rotate" in out["text"]
    assert out["citations"][0]["source"] == "corpus/tls.md"
    assert out["extractive"] is True
    follow = chain.invoke({
        "question": "and its oil pressure?",
        "history": [{"role": "user", "content": "Tell me about the hydraulic press"}],
    })
    assert follow["citations"][0]["source"] == "corpus/press.pdf"
    batch = chain.batch(["espresso descaling", "piston seals"])
    assert [b["citations"][0]["source"] for b in batch] == [
        "corpus/coffee.txt", "corpus/press.pdf"
    ]
    with pytest.raises(BadInput):
        chain.invoke({"nothing": 1})
