"""One contract, every generator backend: the API and CLI rely on these shapes, so the
backends cannot drift apart (extractive, openai against the fake server, transformers on
the tiny random VLM)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.generate import BACKENDS, Delta, Done, Generator, build_generator
from rag.generate.citations import cited_numbers
from rag.media import MediaStore
from rag.settings import Settings
from rag.types import Answer, Hit
from tests.rag.generate.fake_vlm import FakeVLM

HISTORY = [
    {"role": "user", "content": "Tell me about the X200 router"},
    {"role": "assistant", "content": "It is a home router [1]."},
]


@pytest.fixture(params=sorted(BACKENDS))
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, media: MediaStore
) -> Iterator[Generator]:
    name = request.param
    generator: dict[str, object] = {"backend": name, "image_max_side": 64,
                                    "max_image_pixels": 4096}
    if name == "transformers":
        tiny: Path = request.getfixturevalue("tiny_vlm_dir")
        generator["transformers"] = {"model": str(tiny), "max_new_tokens": 4}
    with FakeVLM() as fake:
        generator["openai"] = {"base_url": fake.base_url, "model": "fake-vlm"}
        settings = Settings.model_validate(
            {"data_dir": tmp_path, "offline": True, "generator": generator}
        )
        gen = build_generator(settings, media)
        gen.load()
        yield gen


def check_answer(answer: Answer, hits: list[Hit]) -> None:
    assert isinstance(answer, Answer) and isinstance(answer.text, str)
    assert answer.hits == hits[: len(answer.hits)]
    cited = set(cited_numbers(answer.text, limit=len(answer.hits)))
    assert [c.index for c in answer.citations] == sorted({c.index for c in answer.citations})
    for c in answer.citations:
        assert c.index in cited, "only what the text cites is a citation"
        hit = answer.hits[c.index - 1]
        assert (c.source, c.page, c.modality, c.doc_id) == (
            hit.source, hit.page, hit.modality, hit.doc_id)
        assert c.media == hit.media


class TestGeneratorContract:
    def test_is_a_generator(self, backend: Generator) -> None:
        assert isinstance(backend, Generator)

    def test_generate(self, backend: Generator, hits: list[Hit]) -> None:
        check_answer(backend.generate("How many Ethernet ports?", hits, HISTORY), hits)

    def test_stream_is_deltas_then_one_done(self, backend: Generator, hits: list[Hit]) -> None:
        events = list(backend.stream("How many Ethernet ports?", hits, HISTORY))
        assert isinstance(events[-1], Done)
        assert all(isinstance(e, Delta) for e in events[:-1])
        answer = events[-1].answer
        assert "".join(e.text for e in events[:-1]) == answer.text  # type: ignore[union-attr]
        check_answer(answer, hits)

    def test_no_hits(self, backend: Generator) -> None:
        answer = backend.generate("How many Ethernet ports?", [])
        assert answer.citations == [] and answer.hits == []
