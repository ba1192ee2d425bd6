"""The local-VLM backend, for plumbing only, on a tiny random Idefics3 (SmolVLM
architecture) model built by the test: loading by path, the prompt and images reaching
the processor, decoding, streaming, usage, and the errors for missing or wrong models."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any, cast

import pytest

from rag.errors import ConfigError, ModelUnavailable
from rag.generate import Delta, Done, GenerationEvent
from rag.generate.hf_transformers import TransformersGenerator, decode_data_url, to_hf_messages
from rag.generate.images import to_data_url
from rag.generate.prompt import SYSTEM_PROMPT
from rag.media import MediaStore
from rag.settings import GeneratorSettings, TransformersGeneratorSettings
from rag.types import Hit

pytest.importorskip("transformers")

QUESTION = "How many Ethernet ports does the X200 have?"
MAX_NEW = 6


def make(
    model: str | Path, media: MediaStore | None, offline: bool = True
) -> TransformersGenerator:
    settings = GeneratorSettings(
        backend="transformers",
        image_max_side=64,
        max_image_pixels=64 * 64,
        transformers=TransformersGeneratorSettings(model=str(model), max_new_tokens=MAX_NEW),
    )
    return TransformersGenerator(settings, media, offline=offline)


@pytest.fixture(scope="module")
def loaded(tiny_vlm_dir: Path) -> TransformersGenerator:
    gen = make(tiny_vlm_dir, None)
    gen.load()
    return gen


@pytest.fixture
def tiny(loaded: TransformersGenerator, media: MediaStore) -> TransformersGenerator:
    loaded.media = media  # share the loaded weights; give this test's media store
    return loaded


def spy_on_template(gen: TransformersGenerator, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record the messages the processor's chat template receives."""
    seen: list[Any] = []
    original = gen._processor.apply_chat_template

    def spy(messages: Any, **kwargs: Any) -> Any:
        seen.append(messages)
        return original(messages, **kwargs)

    monkeypatch.setattr(gen._processor, "apply_chat_template", spy)
    return seen


def test_generate_plumbing(
    tiny: TransformersGenerator, hits: list[Hit], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = spy_on_template(tiny, monkeypatch)
    answer = tiny.generate(QUESTION, hits)
    assert isinstance(answer.text, str) and not answer.extractive
    assert answer.model == tiny.model_name and answer.hits == hits
    usage = answer.usage
    assert usage["prompt_tokens"] > 500  # byte-level tokens of the whole prompt
    assert 1 <= usage["completion_tokens"] <= MAX_NEW
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    (messages,) = seen
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == [{"type": "text", "text": SYSTEM_PROMPT}]
    parts = messages[1]["content"]
    assert [p["type"] for p in parts] == ["text", "text", "image", "text", "image"]
    assert "[1] docs/guide.pdf, page 3 (text)" in parts[0]["text"]
    assert parts[1]["text"] == "Image [2]:\n"
    for part in (parts[2], parts[4]):
        assert max(part["image"].size) <= 64


def test_answer_text_is_decoded_and_cited(
    tiny: TransformersGenerator, hits: list[Hit], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Force the model's output tokens to check decoding and citation parsing end to end."""
    import torch

    reply = "Four ports [1]; the label says so [2]."
    tokenizer = tiny._processor.tokenizer
    reply_ids = tokenizer(reply, add_special_tokens=False, return_tensors="pt")["input_ids"]

    def fake_generate(input_ids: Any, **kwargs: Any) -> Any:
        return torch.cat([input_ids, reply_ids, torch.tensor([[tokenizer.eos_token_id]])], 1)

    monkeypatch.setattr(tiny._model, "generate", fake_generate)
    answer = tiny.generate(QUESTION, hits)
    assert answer.text == reply
    assert [(c.index, c.source) for c in answer.citations] == [
        (1, "docs/guide.pdf"), (2, "photos/router-label.jpg")]
    assert answer.usage["completion_tokens"] == reply_ids.shape[1] + 1


def test_stream_plumbing(tiny: TransformersGenerator, hits: list[Hit]) -> None:
    events = list(tiny.stream(QUESTION, hits, history=[
        {"role": "user", "content": "Tell me about the X200"},
        {"role": "assistant", "content": "A router [1]."},
    ]))
    deltas, done = events[:-1], events[-1]
    assert all(isinstance(e, Delta) for e in deltas) and isinstance(done, Done)
    assert "".join(d.text for d in deltas) == done.answer.text  # type: ignore[union-attr]
    assert 1 <= done.answer.usage["completion_tokens"] <= MAX_NEW


def test_stream_can_be_abandoned(tiny: TransformersGenerator, hits: list[Hit]) -> None:
    stream = cast(Generator[GenerationEvent, None, None], tiny.stream(QUESTION, hits))
    for event in stream:
        assert isinstance(event, Delta | Done)
        break
    stream.close()  # stops generation and joins the worker; the lock is released
    assert isinstance(list(tiny.stream(QUESTION, hits))[-1], Done)


def test_load_is_lazy_and_once(tiny_vlm_dir: Path) -> None:
    gen = make(tiny_vlm_dir, None)
    assert gen._model is None  # construction is cheap
    gen.load()
    model = gen._model
    gen.load()
    assert gen._model is model


# ------------------------------------------------------------------------- errors


def test_missing_hub_model_explains_how_to_provide_it() -> None:
    gen = make("HuggingFaceTB/SmolVLM-256M-Instruct-not-cached", None, offline=True)
    with pytest.raises(ModelUnavailable) as err:
        gen.load()
    message = str(err.value)
    assert "HF_HUB_OFFLINE=1" in message
    assert "huggingface-cli download HuggingFaceTB/SmolVLM-256M-Instruct-not-cached" in message
    assert "generator.transformers.model" in message and "local directory" in message


def test_missing_local_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="is not a directory"):
        make(tmp_path / "no-such-model", None).load()


def test_text_only_model_is_a_config_error(tmp_path: Path) -> None:
    from tests.rag.generate.tiny_vlm import build_text_only_model

    with pytest.raises(ConfigError, match="image-text-to-text"):
        make(build_text_only_model(tmp_path / "llm"), None).load()


def test_generate_loads_lazily_and_raises_the_same_error(hits: list[Hit]) -> None:
    gen = make("someone/missing-vlm", None, offline=True)
    with pytest.raises(ModelUnavailable):
        gen.generate(QUESTION, hits)


# ------------------------------------------------------------------ message mapping


def test_to_hf_messages() -> None:
    from PIL import Image

    ours = Image.new("RGB", (8, 8), (255, 0, 0))
    history_img = Image.new("RGB", (4, 2), (0, 0, 255))
    url = to_data_url(ours)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": to_data_url(history_img)}},
            {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
        ]},
        {"role": "user", "content": [
            {"type": "text", "text": "sources"},
            {"type": "text", "text": "Image [2]:"},
            {"type": "image_url", "image_url": {"url": url}},
        ]},
    ]
    out = to_hf_messages(messages, {url: ours})
    assert out[0] == {"role": "system", "content": [{"type": "text", "text": "rules"}]}
    first = out[1]["content"]
    assert [p["type"] for p in first] == ["text", "image"]  # remote URL dropped
    assert first[1]["image"].size == (4, 2)
    last = out[2]["content"]
    assert last[0]["text"] == "sources\n" and last[1]["text"] == "Image [2]:\n"
    assert last[2]["image"] is ours
    assert decode_data_url("data:image/png;base64,not-base64!") is None
