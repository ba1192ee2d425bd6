"""The ``vlm`` reranker against the fake OpenAI-compatible server: the exact request,
score parsing, the fallback on garbage, and the errors for a missing endpoint."""

from __future__ import annotations

import base64
import io
import logging
import socket
from pathlib import Path

import pytest
from PIL import Image

from rag.errors import ConfigError, UpstreamError
from rag.media import MediaStore, media_key
from rag.rerank import apply_reranker, build_reranker
from rag.rerank.vlm import SYSTEM_PROMPT, VlmReranker, parse_scores
from rag.settings import RetrievalSettings, VlmRerankSettings
from rag.types import Hit
from tests.rag.generate.fake_vlm import FakeVLM

DOC = "ab" * 32
QUESTION = "Which port does the SMTP relay listen on?"


def settings(base_url: str | None, **kw: object) -> RetrievalSettings:
    vlm = VlmRerankSettings(base_url=base_url, model="Qwen/Qwen2.5-VL-7B-Instruct",
                            image_max_side=64, max_tokens=100, **kw)  # type: ignore[arg-type]
    return RetrievalSettings(reranker="vlm", vlm=vlm)


def candidates() -> list[Hit]:
    key = media_key(DOC, 2)
    return [
        Hit(id="a", score=0.9, source="notes/coffee.txt", page=1, modality="text",
            text="The espresso machine is descaled on Fridays."),
        Hit(id="b", score=0.8, source="scans/smtp.pdf", page=2, modality="page",
            text="relay.example.com port 587 STARTTLS", media=key),
        Hit(id="c", score=0.7, source="scans/smtp.pdf", page=2, modality="text",
            text="SMTP relay settings: port 587", media=key),
        Hit(id="d", score=0.6, source="docs/dns.md", page=0, modality="text", text="DNS TTLs."),
    ]


@pytest.fixture
def media(tmp_path: Path) -> MediaStore:
    store = MediaStore(tmp_path / "media")
    store.put(media_key(DOC, 2), Image.new("RGB", (400, 200), (200, 30, 30)))
    return store


def test_exact_request_and_new_order(media: MediaStore) -> None:
    with FakeVLM(reply='Sure! ```json\n{"scores": {"1": 1, "2": 9, "3": 7.5, "4": 0}}\n```') \
            as fake:
        reranker = build_reranker(settings(fake.base_url), media)
        assert isinstance(reranker, VlmReranker)
        out = apply_reranker(reranker, [], candidates(), 3, QUESTION)

    assert [h.id for h in out] == ["b", "c", "a"]
    assert [h.score for h in out] == [9.0, 7.5, 1.0]
    (request,) = fake.requests
    assert request.path == "/v1/chat/completions"
    body = request.body
    assert set(body) == {"model", "messages", "temperature", "max_tokens", "stream"}
    assert body["model"] == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert body["temperature"] == 0.0 and body["max_tokens"] == 100 and body["stream"] is False
    system, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    text, label, image = user["content"]
    assert text == {"type": "text", "text": (
        f"Question: {QUESTION}\n\nCandidates:\n\n"
        "[1] notes/coffee.txt, page 1 (text)\nThe espresso machine is descaled on Fridays.\n\n"
        "[2] scans/smtp.pdf, page 2 (page, see Image [2])\nrelay.example.com port 587 STARTTLS"
        "\n\n[3] scans/smtp.pdf, page 2 (text, see Image [2])\nSMTP relay settings: port 587"
        "\n\n[4] docs/dns.md (text)\nDNS TTLs.\n\n"
        'Score all 4 candidates. JSON only: {"scores": {"1": <0-10>, ...}}'
    )}
    assert label == {"type": "text", "text": "Image [2]:"}, "one image per page, not per chunk"
    url = image["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    shown = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert shown.size == (64, 32), "resized to retrieval.vlm.image_max_side"


def test_query_image_is_attached_last(media: MediaStore) -> None:
    with FakeVLM(reply='{"scores": [3, 2, 1, 0]}') as fake:
        reranker = VlmReranker(settings(fake.base_url), media)
        out = reranker.rerank_query("", Image.new("RGB", (128, 128), "white"), candidates(), 4)
    assert [h.id for h in out] == ["a", "b", "c", "d"]
    content = fake.last["messages"][1]["content"]
    assert content[0]["text"].startswith("Question: (no text question")
    assert content[-2] == {"type": "text", "text": "Query image:"}
    assert content[-1]["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_garbage_keeps_the_fused_order_with_a_warning(
    media: MediaStore, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeVLM(reply="I think the second one looks good!") as fake, \
            caplog.at_level(logging.WARNING, logger="rag.rerank.vlm"):
        out = VlmReranker(settings(fake.base_url), media).rerank_query(
            QUESTION, None, candidates(), 4
        )
    assert [h.id for h in out] == ["a", "b", "c", "d"]
    assert [h.score for h in out] == [0.9, 0.8, 0.7, 0.6]
    assert "no usable scores" in caplog.text


def test_candidate_window_and_unscored_slots(media: MediaStore) -> None:
    # Only the first two candidates are shown; the model scores only [2].
    with FakeVLM(reply="2: 8") as fake:
        out = VlmReranker(settings(fake.base_url, candidates=2), media).rerank_query(
            QUESTION, None, candidates(), 4
        )
    assert [h.id for h in out] == ["a", "b", "c", "d"]
    assert "[3]" not in fake.last["messages"][1]["content"][0]["text"]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"scores": {"1": 7, "2": "3/10", "9": 5}}', {1: 7.0, 2: 3.0}),
        ('{"scores": [{"id": 2, "score": 11}, {"id": 1, "score": -4}]}', {2: 10.0, 1: 0.0}),
        ('{"1": 4.5, "2": NaN}', {1: 4.5}),
        ("[1]: 6\n[2] - 2\n3) 9", {1: 6.0, 2: 2.0, 3: 9.0}),
        ("no numbers at all", {}),
        ('{"scores": "high"}', {}),
        ("", {}),
    ],
)
def test_parse_scores(reply: str, expected: dict[int, float]) -> None:
    assert parse_scores(reply, 3) == expected


def test_missing_endpoint_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="retrieval.vlm.base_url"):
        build_reranker(settings(None))


def test_unreachable_endpoint_names_the_url_and_setting() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    reranker = VlmReranker(settings(url), None, max_retries=0)
    with pytest.raises(UpstreamError) as err:
        reranker.rerank_query(QUESTION, None, candidates(), 3)
    assert url in str(err.value) and "MMRAG_RETRIEVAL__VLM__BASE_URL" in str(err.value)


def test_server_error_is_an_upstream_error(media: MediaStore) -> None:
    with FakeVLM(fail_status=404, fail_message="model not found") as fake:
        reranker = VlmReranker(settings(fake.base_url), media, max_retries=0)
        with pytest.raises(UpstreamError, match="HTTP 404.*model not found"):
            reranker.rerank_query(QUESTION, None, candidates(), 3)
