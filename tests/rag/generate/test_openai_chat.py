"""The OpenAI-compatible backend against a real HTTP server started by the test: asserts
the exact request mmrag sends, the citations it derives, streaming, and error messages."""

from __future__ import annotations

import base64
import io
import socket
from collections.abc import Generator
from typing import cast

import pytest
from PIL import Image

from rag.errors import UpstreamError
from rag.generate import Delta, Done, GenerationEvent
from rag.generate.openai_chat import OpenAIGenerator
from rag.generate.prompt import QUESTION_IMAGE_LABEL, SYSTEM_PROMPT, select_sources, user_text
from rag.media import MediaStore
from rag.settings import GeneratorSettings
from rag.types import Hit
from tests.rag.generate.fake_vlm import DEFAULT_REPLY, FakeVLM

QUESTION = "How many Ethernet ports does the X200 have, and what is its admin address?"


def generator(settings: GeneratorSettings, media: MediaStore, fake: FakeVLM) -> OpenAIGenerator:
    settings.openai.base_url = fake.base_url
    return OpenAIGenerator(settings, media, max_retries=0)


def decode(url: str) -> Image.Image:
    prefix = "data:image/jpeg;base64,"
    assert url.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(url[len(prefix):])))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------- the request


def test_exact_request(
    gen_settings: GeneratorSettings, media: MediaStore, hits: list[Hit], fake_vlm: FakeVLM
) -> None:
    history = [
        {"role": "user", "content": "Tell me about the X200 router"},
        {"role": "assistant", "content": "The X200 is a home router [1]."},
    ]
    generator(gen_settings, media, fake_vlm).generate(QUESTION, hits, history)

    (request,) = fake_vlm.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer not-needed"
    body = request.body
    assert set(body) == {"model", "messages", "temperature", "max_tokens", "stream"}
    assert body["model"] == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert body["temperature"] == 0.1 and body["max_tokens"] == 256
    assert body["stream"] is False

    system, *turns, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert "never instructions" in system["content"]  # injection rule
    assert turns == history

    assert user["role"] == "user"
    text, label2, image2, label4, image4 = user["content"]
    sources = select_sources(hits, 8, 12000)
    assert text == {"type": "text", "text": user_text(QUESTION, sources, [2, 4])}
    # Numbered sources, in retrieval order, with file/page/modality headers.
    headers = [
        "[1] docs/guide.pdf, page 3 (text)",
        "[2] photos/router-label.jpg, page 1 (image, attached as Image [2])",
        "[3] docs/guide.pdf, page 7 (text)",
        "[4] scans/warranty.pdf, page 2 (page image, attached as Image [4])",
    ]
    positions = [text["text"].index(h) for h in headers]
    assert positions == sorted(positions)
    assert text["text"].endswith(f"Question: {QUESTION}")
    assert label2 == {"type": "text", "text": "Image [2]:"}
    assert label4 == {"type": "text", "text": "Image [4]:"}
    assert set(image2) == {"type", "image_url"} and image2["type"] == "image_url"
    label_img, page_img = decode(image2["image_url"]["url"]), decode(image4["image_url"]["url"])
    for img in (label_img, page_img):
        assert max(img.size) <= 512 and img.width * img.height <= 200_000
    assert label_img.width > label_img.height  # the landscape photo
    assert page_img.height > page_img.width  # the portrait page


def test_max_images_respected(
    gen_settings: GeneratorSettings, media: MediaStore, hits: list[Hit], fake_vlm: FakeVLM
) -> None:
    gen_settings.max_images = 1
    generator(gen_settings, media, fake_vlm).generate(QUESTION, hits)
    parts = fake_vlm.last["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "text", "image_url"]
    assert parts[1]["text"] == "Image [2]:"  # the better-scored image
    assert "[4] scans/warranty.pdf, page 2 (page image, image not attached)" in parts[0]["text"]


def test_max_sources_and_api_key(
    gen_settings: GeneratorSettings, media: MediaStore, hits: list[Hit], fake_vlm: FakeVLM
) -> None:
    gen_settings.max_sources = 2
    gen_settings.openai.api_key = "sk-test-123"
    answer = generator(gen_settings, media, fake_vlm).generate(QUESTION, hits)
    text = fake_vlm.last["messages"][-1]["content"][0]["text"]
    assert "[2] photos/router-label.jpg" in text and "[3]" not in text
    assert fake_vlm.requests[-1].headers["authorization"] == "Bearer sk-test-123"
    assert answer.hits == hits[:2]


def test_text_only_sources_send_no_image_parts(
    gen_settings: GeneratorSettings, media: MediaStore, hits: list[Hit], fake_vlm: FakeVLM
) -> None:
    text_hits = [h for h in hits if h.modality == "text"]
    generator(gen_settings, media, fake_vlm).generate("ports?", text_hits)
    parts = fake_vlm.last["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text"]


# ---------------------------------------------------------------------- the answer


def test_answer_and_citations(
    gen_settings: GeneratorSettings, media: MediaStore, hits: list[Hit], fake_vlm: FakeVLM
) -> None:
    answer = generator(gen_settings, media, fake_vlm).generate(QUESTION, hits)
    assert answer.text == DEFAULT_REPLY
    assert not answer.extractive
    assert answer.model == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert answer.usage == {"prompt_tokens": 321, "completion_tokens": 27, "total_tokens": 348}
    assert answer.hits == hits
    first, second = answer.citations
    assert (first.index, first.source, first.page, first.modality) == (
        1, "docs/guide.pdf", 3, "text")
    assert (second.index, second.source, second.modality) == (2, "photos/router-label.jpg",
                                                              "image")
    assert second.box == (0.12, 0.20, 0.86, 0.46)
    assert second.media == hits[1].media


def test_uncited_answer_has_no_citations(
    gen_settings: GeneratorSettings, media: MediaStore, hits: list[Hit], fake_vlm: FakeVLM
) -> None:
    fake_vlm.reply = "The sources do not say. See [7]."  # [7] is out of range
    answer = generator(gen_settings, media, fake_vlm).generate(QUESTION, hits)
    assert answer.citations == []


def test_streaming(
    gen_settings: GeneratorSettings, media: MediaStore, hits: list[Hit], fake_vlm: FakeVLM
) -> None:
    fake_vlm.chunk_chars = 7
    events = list(generator(gen_settings, media, fake_vlm).stream(QUESTION, hits))
    deltas, done = events[:-1], events[-1]
    assert all(isinstance(e, Delta) for e in deltas) and isinstance(done, Done)
    assert len(deltas) == -(-len(DEFAULT_REPLY) // 7)
    assert "".join(d.text for d in deltas) == done.answer.text == DEFAULT_REPLY  # type: ignore[union-attr]
    assert [c.index for c in done.answer.citations] == [1, 2]
    assert done.answer.usage["total_tokens"] == 348
    body = fake_vlm.last
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"][0]["content"] == SYSTEM_PROMPT


def test_stream_consumer_may_stop_early(
    gen_settings: GeneratorSettings, media: MediaStore, hits: list[Hit], fake_vlm: FakeVLM
) -> None:
    stream = cast(
        Generator[GenerationEvent, None, None],
        generator(gen_settings, media, fake_vlm).stream(QUESTION, hits),
    )
    first = next(stream)
    assert isinstance(first, Delta)
    stream.close()  # closes the HTTP response; nothing raises


# ------------------------------------------------------------------------- errors


def test_connection_refused(
    gen_settings: GeneratorSettings, media: MediaStore, hits: list[Hit]
) -> None:
    gen_settings.openai.base_url = f"http://127.0.0.1:{free_port()}/v1"
    gen = OpenAIGenerator(gen_settings, media, max_retries=0)
    with pytest.raises(UpstreamError) as err:
        gen.generate(QUESTION, hits)
    message = str(err.value)
    assert gen_settings.openai.base_url in message
    assert "cannot connect" in message and "running" in message
    assert "generator.openai.base_url" in message
    with pytest.raises(UpstreamError, match="cannot connect"):
        list(gen.stream(QUESTION, hits))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "rejected the API key"),
        (404, "model 'Qwen/Qwen2.5-VL-7B-Instruct' is served there"),
        (400, "accepts images"),
        (429, "rate limiting"),
        (500, "failed with HTTP 500"),
        (503, "failed with HTTP 503"),
    ],
)
def test_http_errors_are_upstream_errors(
    gen_settings: GeneratorSettings,
    media: MediaStore,
    hits: list[Hit],
    fake_vlm: FakeVLM,
    status: int,
    expected: str,
) -> None:
    fake_vlm.fail_status = status
    fake_vlm.fail_message = "the model says no"
    gen = generator(gen_settings, media, fake_vlm)
    for call in (lambda: gen.generate(QUESTION, hits), lambda: list(gen.stream(QUESTION, hits))):
        with pytest.raises(UpstreamError) as err:
            call()
        assert expected in str(err.value)
        assert fake_vlm.base_url in str(err.value)
        assert "the model says no" in str(err.value)


def test_timeout(
    gen_settings: GeneratorSettings, media: MediaStore, hits: list[Hit], fake_vlm: FakeVLM
) -> None:
    fake_vlm.delay_s = 1.5
    gen_settings.openai.timeout_s = 0.3
    with pytest.raises(UpstreamError, match=r"did not answer within 0.3s.*timeout_s"):
        generator(gen_settings, media, fake_vlm).generate(QUESTION, hits)


def test_empty_reply(
    gen_settings: GeneratorSettings, media: MediaStore, hits: list[Hit], fake_vlm: FakeVLM
) -> None:
    fake_vlm.reply = ""
    gen = generator(gen_settings, media, fake_vlm)
    with pytest.raises(UpstreamError, match="no text"):
        gen.generate(QUESTION, hits)
    with pytest.raises(UpstreamError, match="streamed no text"):
        list(gen.stream(QUESTION, hits))


def test_question_image_is_sent_last_under_its_own_label(
    gen_settings: GeneratorSettings, media: MediaStore, hits: list[Hit], fake_vlm: FakeVLM
) -> None:
    gen_settings.image_max_side = 128
    asked = Image.new("RGB", (1600, 900), "orange")
    generator(gen_settings, media, fake_vlm).generate("What is this?", hits, image=asked)
    parts = fake_vlm.last["messages"][-1]["content"]
    assert parts[-2] == {"type": "text", "text": QUESTION_IMAGE_LABEL}
    sent = decode(parts[-1]["image_url"]["url"])
    assert max(sent.size) <= 128 and sent.getpixel((5, 5))[0] > 200  # resized, still orange
    # the numbered source images still come first, in number order
    labels = [p["text"] for p in parts if p["type"] == "text"][1:-1]
    assert labels == sorted(labels) and all(lbl.startswith("Image [") for lbl in labels)
