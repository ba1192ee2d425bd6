"""The OpenAI-compatible surface, driven by the official clients a user would use: the
``openai`` SDK and LangChain's ``ChatOpenAI``."""

from __future__ import annotations

from typing import Any

import pytest
from openai import OpenAI

from tests.api.conftest import COLLECTION, Corpus, Server, data_url

# Real uvicorn servers on loopback: the slow tier (make test-slow).
pytestmark = pytest.mark.slow

@pytest.fixture
def client(server: Server) -> OpenAI:
    return OpenAI(base_url=server.v1, api_key="unused", max_retries=0)


def citations(completion: Any) -> list[dict[str, Any]]:
    extra = completion.model_extra or {}
    return list(extra.get("citations") or [])


def test_models_list_shows_collections(client: OpenAI) -> None:
    models = client.models.list()
    ids = [m.id for m in models.data]
    assert COLLECTION in ids
    card = next(m for m in models.data if m.id == COLLECTION)
    assert card.owned_by == "mmrag" and card.object == "model" and card.created > 0


def test_completion_is_extractive_and_cites_the_right_file(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model=COLLECTION,
        messages=[{"role": "user", "content": "How do I rotate TLS certificates?"}],
    )
    assert completion.object == "chat.completion"
    assert completion.model == COLLECTION
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert "certctl rotate" in (choice.message.content or "")
    assert completion.usage is not None
    cites = citations(completion)
    assert cites, "the answer must cite its sources"
    assert cites[0]["source"] == "corpus/tls.md"
    assert cites[0]["index"] == 1
    assert {"page", "text", "box", "media_url", "doc_id", "score"} <= set(cites[0])


def test_streaming_chunks_concatenate_and_end_properly(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model=COLLECTION,
        messages=[{"role": "user", "content": "When is the espresso machine descaled?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    content_chunks = [c for c in chunks if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in content_chunks)
    assert "descaled every Friday" in text
    finals = [c for c in content_chunks if c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "stop"
    final_cites = (finals[0].model_extra or {}).get("citations")
    assert final_cites and final_cites[0]["source"] == "corpus/coffee.txt"
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert len({c.id for c in chunks}) == 1


def test_stream_equals_non_stream(client: OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "How often are the piston seals replaced?"}]
    whole = client.chat.completions.create(model=COLLECTION, messages=messages)
    parts = client.chat.completions.create(model=COLLECTION, messages=messages, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in parts if c.choices) == (
        whole.choices[0].message.content
    )
    assert citations(whole)[0]["source"] == "corpus/press.pdf"
    assert citations(whole)[0]["page"] == 1


def test_image_part_retrieves_the_images_source(client: OpenAI, corpus: Corpus) -> None:
    completion = client.chat.completions.create(
        model=COLLECTION,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Where does this parcel ship from?"},
                    {"type": "image_url", "image_url": {"url": data_url(corpus.png)}},
                ],
            }
        ],
    )
    cites = citations(completion)
    assert cites and cites[0]["source"] == "corpus/invoice.png"
    assert cites[0]["media_url"].startswith("/v1/media/")
    assert "Rotterdam" in (completion.choices[0].message.content or "")


def test_history_is_used_for_follow_ups(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model=COLLECTION,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tell me about the hydraulic press maintenance"},
            {"role": "assistant", "content": "It needs regular maintenance."},
            {"role": "user", "content": "and what about its oil pressure?"},
        ],
    )
    assert citations(completion)[0]["source"] == "corpus/press.pdf"


def test_filter_extension_restricts_sources(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model=COLLECTION,
        messages=[{"role": "user", "content": "How do I rotate TLS certificates?"}],
        extra_body={"filter": {"modality": ["image"]}},
    )
    assert all(c["modality"] == "image" for c in citations(completion))


def test_unknown_collection_is_an_openai_404(client: OpenAI) -> None:
    import openai

    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(
            model="no-such-collection", messages=[{"role": "user", "content": "hi"}]
        )
    body = err.value.body
    assert isinstance(body, dict)
    assert "no-such-collection" in body["message"]
    assert body["type"] == "not_found_error"


def test_langchain_chat_openai_invoke(server: Server) -> None:
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    llm = ChatOpenAI(
        base_url=server.v1, api_key=SecretStr("unused"), model=COLLECTION, max_retries=0
    )
    reply = llm.invoke("How do I rotate TLS certificates?")
    assert "certctl rotate" in str(reply.content)
