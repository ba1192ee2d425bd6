"""Fused PP-OCR graphs (rag/ocr/fuse.py): fewer nodes, the same text, a safe fallback."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import rag.ocr.fuse as fuse_module
from rag.ocr import RapidOcr
from rag.ocr.fuse import fuse, fused_session
from rag.settings import OcrSettings
from tests.ingest.files import scan_like, text_image

MODELS = Path(__import__("rapidocr_onnxruntime").__file__).parent / "models"
DET = MODELS / "ch_PP-OCRv4_det_infer.onnx"
REC = MODELS / "ch_PP-OCRv4_rec_infer.onnx"


def ops(model: Any) -> Counter[str]:
    return Counter(node.op_type for node in model.graph.node)


@pytest.mark.parametrize("path", [DET, REC], ids=["det", "rec"])
def test_fuse_folds_the_element_wise_chains(path: Path) -> None:
    original = onnx.load(str(path))
    before = ops(original)
    fused, counts = fuse(onnx.load(str(path)))
    after = ops(fused)
    onnx.checker.check_model(fused)
    # Every hard-swish became HardSigmoid * x; every Conv -> Mul -> Add lost its affine.
    assert counts["hard_swish"] == before["Clip"] and after["Clip"] == 0
    assert after["HardSigmoid"] == before["HardSigmoid"] + counts["hard_swish"]
    assert counts["conv_affine"] >= 20 and counts["affine_conv1x1"] >= 10
    assert after["Conv"] == before["Conv"]
    elementwise = ("Add", "Mul", "Div", "Clip")
    assert sum(after[op] for op in elementwise) < 0.5 * sum(before[op] for op in elementwise)
    # The opset and the character list the recogniser decodes with are kept.
    assert [(o.domain, o.version) for o in fused.opset_import] == [
        (o.domain, o.version) for o in original.opset_import
    ]
    assert list(fused.metadata_props) == list(original.metadata_props)


@pytest.mark.parametrize("path,shape", [(DET, (2, 3, 96, 160)), (REC, (3, 3, 48, 320))],
                         ids=["det", "rec"])
def test_fused_model_computes_the_same_function(path: Path, shape: tuple[int, ...]) -> None:
    original = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    fused = fused_session(original)
    assert fused is not original and fused._model_path is None
    x = np.random.default_rng(1).random(shape, dtype=np.float32) * 2 - 1
    want = original.run(None, {original.get_inputs()[0].name: x})[0]
    got = fused.run(None, {fused.get_inputs()[0].name: x})[0]
    assert np.abs(want - got).max() < 1e-4
    if path == REC:  # CTC decoding takes the argmax per step: it must not move
        assert (want.argmax(-1) == got.argmax(-1)).all()


def test_fused_engine_reads_exactly_what_the_original_reads() -> None:
    plain = RapidOcr(OcrSettings(runtime="onnxruntime", fuse_layers=False, threads=1))
    fused = RapidOcr(OcrSettings(runtime="onnxruntime", threads=1))
    images = [
        text_image(["Total due: $1,245.00", "Ref. INV-2024/117 (paid 3 Dec)"], size=22,
                   width=640),
        scan_like(text_image(["retry after 30 s (HTTP 429); limit: 1,200 req/min",
                              "server 10.0.12.7:8443 - v2.14.1 - 99.95% uptime"],
                             size=24, width=900)),
    ]
    for image in images:
        want, got = plain.read(image), fused.read(image)
        assert want and [b.text for b in got] == [b.text for b in want]
        for a, b in zip(want, got, strict=True):
            assert a.box == pytest.approx(b.box, abs=1e-4)
            assert a.confidence == pytest.approx(b.confidence, abs=1e-3)
    engines = (plain._engine, fused._engine)
    assert all(e is not None for e in engines)
    plain_rec = plain._engine.text_rec.session.session  # type: ignore[union-attr]
    fused_rec = fused._engine.text_rec.session.session  # type: ignore[union-attr]
    assert plain_rec._model_path == str(REC) and fused_rec._model_path is None
    # The fused sessions keep RapidOCR's options (one thread per worker process).
    assert fused_rec.get_session_options().intra_op_num_threads == 1


def test_a_fused_model_that_disagrees_is_not_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = ort.InferenceSession(str(REC), providers=["CPUExecutionProvider"])
    monkeypatch.setattr(fuse_module, "TOLERANCE", -1.0)
    with caplog.at_level(logging.WARNING, logger="rag.ocr.fuse"):
        assert fused_session(original) is original
    assert "ch_PP-OCRv4_rec_infer.onnx unfused" in caplog.text
    assert "differs by" in caplog.text


def test_a_model_that_cannot_be_read_is_run_as_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Session:
        _model_path = str(tmp_path / "gone.onnx")

    session = Session()
    with caplog.at_level(logging.WARNING, logger="rag.ocr.fuse"):
        assert fused_session(session) is session
    assert "gone.onnx unfused" in caplog.text
