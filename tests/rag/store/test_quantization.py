"""int8 scalar quantization as a collection setting, on both backends: the collection is
created quantized and searches still find the right points (rescored with originals)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest

from rag.store.base import VectorStore
from rag.store.edge import EdgeStore
from rag.store.qdrant import QdrantStore
from rag.types import CollectionSpec, Point, SearchRequest, VectorQuery

SPEC = CollectionSpec(dense={"text": 64}, sparse=())


def _store(kind: str, root: Path) -> VectorStore:
    if kind == "edge":
        return EdgeStore(root, quantization="int8", oversampling=3.0)
    return QdrantStore(url=":memory:", quantization="int8", oversampling=3.0)


@pytest.mark.parametrize("kind", ["edge", "qdrant"])
def test_quantized_collection_finds_each_point_first(kind: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(400, 64)).astype(np.float32)
    ids = [str(uuid.uuid5(uuid.NAMESPACE_OID, str(i))) for i in range(len(vectors))]
    with _store(kind, tmp_path) as store:
        store.ensure("q", SPEC)
        store.upsert("q", [Point(i, {"text": v.tolist()}, {"n": n})
                           for n, (i, v) in enumerate(zip(ids, vectors, strict=True))])
        store.optimize("q")
        for n in range(0, 400, 20):
            hits = store.query("q", SearchRequest(
                paths=[VectorQuery("text", vectors[n].tolist(), 10)], limit=3))
            assert hits[0].id == ids[n]
            assert hits[0].score == pytest.approx(1.0, abs=1e-3)  # rescored: exact cosine
    if kind == "edge":
        config = json.loads((tmp_path / "q" / "edge_config.json").read_text())
        assert "int8" in json.dumps(config["vectors"]["text"]).lower()


def test_quantized_edge_collection_keeps_originals_on_disk(tmp_path: Path) -> None:
    """The memory saving is the point of int8: the quantized copy is pinned in RAM, the
    float originals stay on disk until rescoring reads them; a plain collection keeps
    the engine's default (originals cached in RAM)."""
    for quant in ("int8", "none"):
        with EdgeStore(tmp_path / quant, quantization=quant) as store:
            store.ensure("q", SPEC)
        vectors = json.loads(
            (tmp_path / quant / "q" / "edge_config.json").read_text())["vectors"]["text"]
        if quant == "int8":
            assert vectors["memory"] == "cold"
            assert vectors["quantization_config"]["scalar"]["memory"] == "pinned"
        else:
            assert "memory" not in vectors and "quantization_config" not in vectors


def test_quantized_server_collection_keeps_originals_on_disk() -> None:
    with QdrantStore(url=":memory:", quantization="int8") as store:
        store.ensure("q", SPEC)
        params = store._get_client().get_collection("q").config.params.vectors
    assert params["text"].on_disk is True
