"""``ocr.runtime``: PP-OCR on OpenVINO reads what onnxruntime reads, and falls back cleanly."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import rag.ocr.openvino_session as ov_module
from rag.errors import ModelUnavailable
from rag.ocr import RapidOcr
from rag.ocr.openvino_session import OpenVinoSession
from rag.settings import OcrSettings
from tests.ingest.files import scan_like, text_image

IMAGES = [
    (["Total due: $1,245.00", "Ref. INV-2024/117 (paid 3 Dec)"], 22, 640),
    (["retry after 30 s (HTTP 429); limit: 1,200 req/min",
      "server 10.0.12.7:8443 - v2.14.1 - 99.95% uptime"], 24, 900),
]


def test_openvino_reads_exactly_what_onnxruntime_reads() -> None:
    reference = RapidOcr(OcrSettings(runtime="onnxruntime", threads=1))
    auto = RapidOcr(OcrSettings(threads=1))  # runtime: auto, openvino is a dependency
    for lines, size, width in IMAGES:
        for image in (text_image(lines, size=size, width=width),
                      scan_like(text_image(lines, size=size, width=width))):
            want, got = reference.read(image), auto.read(image)
            assert want and [b.text for b in got] == [b.text for b in want]
            for a, b in zip(want, got, strict=True):
                assert a.box == pytest.approx(b.box, abs=2e-3)
                assert a.confidence == pytest.approx(b.confidence, abs=2e-3)
    assert auto.runtime == "openvino" and reference.runtime == "onnxruntime"
    engine = auto._engine
    assert engine is not None
    assert isinstance(engine.text_det.infer, OpenVinoSession)
    assert isinstance(engine.text_rec.session, OpenVinoSession)
    # RapidOCR read the recogniser's character list before the swap; it is still there.
    assert len(engine.text_rec.postprocess_op.character) > 6000


def test_auto_without_openvino_runs_onnxruntime_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ov_module, "available", lambda: False)
    engine = RapidOcr(OcrSettings(threads=1))
    with caplog.at_level(logging.WARNING, logger="rag.ocr.rapidocr"):
        lines = engine.read(text_image(IMAGES[0][0], size=22, width=640))
    assert [b.text for b in lines] == IMAGES[0][0]
    assert engine.runtime == "onnxruntime"
    assert "OCR runs on onnxruntime: the openvino package is not installed" in caplog.text


def _failing_compile(*_args: Any) -> OpenVinoSession:
    raise RuntimeError("Cannot create Conv layer: unsupported on this CPU")


def test_a_model_openvino_cannot_compile(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ov_module, "OpenVinoSession", _failing_compile)
    strict = RapidOcr(OcrSettings(runtime="openvino", threads=1))
    with pytest.raises(ModelUnavailable) as err:
        strict.load()
    message = str(err.value)
    assert "OpenVINO could not compile" in message and "ch_PP-OCRv4_det_infer.onnx" in message
    assert "unsupported on this CPU" in message and "ocr.runtime: onnxruntime" in message

    auto = RapidOcr(OcrSettings(threads=1))
    with caplog.at_level(logging.WARNING, logger="rag.ocr.rapidocr"):
        auto.load()
    assert auto.runtime == "onnxruntime" and "OpenVINO could not compile" in caplog.text


def test_openvino_output_that_disagrees_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ov_module, "TOLERANCE", -1.0)
    strict = RapidOcr(OcrSettings(runtime="openvino", threads=1))
    with pytest.raises(ModelUnavailable, match="differs from onnxruntime's"):
        strict.load()
    auto = RapidOcr(OcrSettings(threads=1))
    auto.load()
    assert auto.runtime == "onnxruntime"


def test_onnxruntime_gpu_turns_on_rapidocrs_cuda_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``gpu`` extra (onnxruntime-gpu) cannot run here: pretend onnxruntime offers CUDA
    and torch sees a GPU, and check what we ask RapidOCR for. Its CPU wheel then falls back
    to the CPU provider by itself, and the engine reads on the CPU's runtime."""
    import onnxruntime
    import rapidocr_onnxruntime

    import rag.device

    sent: list[dict[str, Any]] = []
    real = rapidocr_onnxruntime.RapidOCR

    def recording(**kwargs: Any) -> Any:
        sent.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(rapidocr_onnxruntime, "RapidOCR", recording)
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(rag.device, "resolve_device", lambda name: "cuda")
    engine = RapidOcr(OcrSettings(threads=1))
    assert [b.text for b in engine.read(text_image(IMAGES[0][0], size=22, width=640))] == (
        IMAGES[0][0]
    )
    (options,) = sent
    assert options["det_use_cuda"] and options["rec_use_cuda"] and options["cls_use_cuda"]
    # No CUDA provider really came up (CPU wheel), so the CPU's default runtime took over.
    assert engine.runtime == "openvino"

    sent.clear()
    monkeypatch.setattr(rag.device, "resolve_device", lambda name: "cpu")
    cpu = RapidOcr(OcrSettings(threads=1))
    cpu.load()
    assert "det_use_cuda" not in sent[0] and cpu.runtime == "openvino"

    sent.clear()  # ocr.runtime: openvino never asks for CUDA
    monkeypatch.setattr(rag.device, "resolve_device", lambda name: "cuda")
    RapidOcr(OcrSettings(threads=1, runtime="openvino")).load()
    assert "det_use_cuda" not in sent[0]
