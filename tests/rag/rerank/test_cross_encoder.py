"""The ``cross_encoder`` reranker with a tiny random CrossEncoder from a local folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import ModelUnavailable
from rag.rerank import ReadsQuery, apply_reranker, build_reranker
from rag.rerank.cross_encoder import CrossEncoderReranker, passage, source_words
from rag.settings import CrossEncoderRerankSettings, RetrievalSettings
from rag.types import Hit

QUESTION = "how do I rotate TLS certificates on the gateway?"


def hits() -> list[Hit]:
    texts = [
        "The espresso machine is descaled every Friday.",
        "Run certctl rotate --all from the ops host to rotate certificates.",
        "",  # a photo without OCR text
        "Gateway restarts are not needed after a rotation.",
        "Fresh beans arrive on Mondays from Lisbon.",
        "Rotation happens every ninety days.",
    ]
    return [
        Hit(id=f"h{i}", score=1.0 - i / 10, source=f"docs/file_{i}.md", page=1,
            modality="image" if not t else "text", text=t)
        for i, t in enumerate(texts)
    ]


def settings(model: Path | str, candidates: int = 30) -> RetrievalSettings:
    return RetrievalSettings(
        reranker="cross_encoder",
        cross_encoder=CrossEncoderRerankSettings(model=str(model), candidates=candidates),
    )


@pytest.fixture(scope="module")
def reranker(tiny_cross_encoder: Path) -> CrossEncoderReranker:
    built = build_reranker(settings(tiny_cross_encoder), offline=True)
    assert isinstance(built, CrossEncoderReranker) and isinstance(built, ReadsQuery)
    built.load()
    return built


def test_order_and_scores_are_the_models(reranker: CrossEncoderReranker,
                                         tiny_cross_encoder: Path) -> None:
    from sentence_transformers import CrossEncoder

    candidates = hits()
    direct = CrossEncoder(str(tiny_cross_encoder), device="cpu", local_files_only=True)
    with_text = [h for h in candidates if h.text]
    expected = direct.predict([(QUESTION, passage(h)) for h in with_text])
    by_id = {h.id: float(s) for h, s in zip(with_text, expected, strict=True)}
    assert len(set(by_id.values())) == len(by_id), "the tiny model must separate the pairs"

    out = apply_reranker(reranker, [], candidates, 10, QUESTION)

    assert len(out) == len(candidates)
    assert out[2].id == "h2", "a hit without text keeps its fused slot"
    scored = [h for h in out if h.id != "h2"]
    assert [h.id for h in scored] == sorted(by_id, key=lambda i: -by_id[i])
    for h in scored:
        assert h.score == pytest.approx(by_id[h.id], abs=1e-5)


def test_limit_and_candidate_window(tiny_cross_encoder: Path) -> None:
    reranker = CrossEncoderReranker(settings(tiny_cross_encoder, candidates=3), offline=True)
    candidates = hits()
    out = reranker.rerank_query(QUESTION, None, candidates, 5)
    assert len(out) == 5
    assert {h.id for h in out[:3]} == {"h0", "h1", "h2"}
    assert [h.id for h in out[3:]] == ["h3", "h4"], "the tail beyond the window keeps its order"


def test_without_query_text_the_fused_order_stands(reranker: CrossEncoderReranker) -> None:
    candidates = hits()
    out = reranker.rerank_query("", None, candidates, 4)
    assert [h.id for h in out] == ["h0", "h1", "h2", "h3"]
    assert reranker.rerank([], hits(), 2)[1].id == "h1"


def test_passage_leads_with_the_file_name() -> None:
    assert source_words("a/pg_vacuum-tuning.md") == "pg vacuum tuning"
    hit = Hit(id="x", score=0, source="a/pg_vacuum-tuning.md", page=1, modality="text",
              text="autovacuum  scale\nfactor")
    assert passage(hit) == "pg vacuum tuning: autovacuum scale factor"


def test_missing_weights_name_the_model_and_the_fix(tmp_path: Path) -> None:
    reranker = CrossEncoderReranker(
        settings("cross-encoder/ms-marco-MiniLM-L6-v2"), offline=True
    )
    with pytest.raises(ModelUnavailable) as err:
        reranker.rerank_query(QUESTION, None, hits(), 3)
    message = str(err.value)
    assert "cross-encoder/ms-marco-MiniLM-L6-v2" in message
    assert "HF_HUB_OFFLINE" in message and "retrieval.cross_encoder.model" in message

    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with pytest.raises(ModelUnavailable, match="not-a-model"):
        CrossEncoderReranker(settings(empty), offline=True).load()
