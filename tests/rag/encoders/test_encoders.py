"""Real encoders: packaged MiniLM, Qdrant's BM25, and a tiny random open_clip model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rag.encoders import build_encoders
from rag.errors import ModelUnavailable
from rag.settings import Settings
from tests.conftest import tiny_clip


def test_minilm_gives_unit_384d_vectors_with_meaning(offline_settings: Settings) -> None:
    enc = build_encoders(offline_settings)
    assert enc.clip is None and enc.text is not None and enc.sparse is not None
    v = enc.text.encode(["rotate the TLS certificate", "renew an SSL cert", "bake a cake"])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_bm25_document_and_query_vectors_share_token_ids(offline_settings: Settings) -> None:
    enc = build_encoders(offline_settings)
    assert enc.sparse is not None
    doc = enc.sparse.encode_documents(["Vacuum the tables; vacuuming reclaims space."])[0]
    q = enc.sparse.encode_queries(["vacuum"])[0]
    assert q.values == (1.0,) and q.indices[0] in doc.indices
    assert list(doc.indices) == sorted(doc.indices)


def test_tiny_clip_encodes_images_and_texts_into_one_space(tmp_path) -> None:  # type: ignore[no-untyped-def]
    enc = build_encoders(tiny_clip(tmp_path))
    assert enc.clip is not None and enc.dense_dims() == {"clip": 32, "text": 384}
    imgs = enc.clip.encode_images([Image.new("RGB", (64, 40), c) for c in ("red", "blue")])
    txt = enc.clip.encode_texts(["a red square"])
    assert imgs.shape == (2, 32) and txt.shape == (1, 32)
    assert np.allclose(np.linalg.norm(imgs, axis=1), 1.0, atol=1e-4)


def test_missing_clip_weights_say_how_to_provide_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    enc = build_encoders(tiny_clip(tmp_path, clip={"model": "ViT-B-32",
                                                  "checkpoint": str(tmp_path / "none.pt")}))
    assert enc.clip is not None
    with pytest.raises(ModelUnavailable, match="clip.checkpoint"):
        enc.clip.load()


def test_missing_text_model_says_how_to_provide_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rag.settings import load_settings

    s = load_settings("offline", overrides={"data_dir": tmp_path,
                                            "text": {"model": "no-such-org/no-such-model"}})
    enc = build_encoders(s)
    assert enc.text is not None
    with pytest.raises(ModelUnavailable, match="no-such-org/no-such-model.*HF_HUB_OFFLINE"):
        enc.text.load()
