"""OCR with RapidOCR's own PP-OCRv4 models converted to torch, so they run on a GPU.

The ONNX files that ship inside ``rapidocr-onnxruntime`` are converted with onnx2torch
when the engine loads (about a second); RapidOCR's pre- and post-processing (detector
resize, DB box extraction, crop, CTC decoding) stay exactly as they are, only the two
inference sessions are swapped for torch modules. So this backend returns the same lines
as ``rapidocr`` (tests compare them on CPU), and on a CUDA device it needs no
onnxruntime-gpu build (which must match the CUDA and cuDNN versions; the ``gpu`` extra
installs it for those who prefer that route via ``ocr.backend: rapidocr`` plus CUDA).
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.device import resolve_device
from rag.errors import ModelUnavailable, one_line
from rag.ocr.fuse import constants_to_initializers
from rag.ocr.rapidocr import RapidOcr, onnx_file
from rag.settings import OcrSettings

if TYPE_CHECKING:
    from rapidocr_onnxruntime import RapidOCR


class RapidOcrTorch(RapidOcr):
    """:class:`RapidOcr` with detection and recognition run by torch on ``ocr.device``."""

    def __init__(self, settings: OcrSettings) -> None:
        super().__init__(settings)
        self.device = "cpu"

    def _cuda_options(self) -> dict[str, bool]:
        return {}  # its onnxruntime sessions are only read for their model files

    def _after_load(self, engine: RapidOCR) -> None:
        self.device = resolve_device(self.settings.device)
        self.runtime = "torch"
        det = engine.text_det.infer
        rec = engine.text_rec.session
        purpose = "convert to torch"
        engine.text_det.infer = TorchSession(onnx_file(det, purpose), self.device)
        engine.text_rec.session = TorchSession(onnx_file(rec, purpose), self.device)


class TorchSession:
    """Callable like RapidOCR's ``OrtInferSession``: a float32 NCHW batch in, ``[output]``
    out, computed by the converted torch module on ``device``."""

    def __init__(self, model_file: Path, device: str) -> None:
        import torch

        self.device = device
        self.module = convert(model_file).to(device).eval()
        self._lock = threading.Lock()
        self._torch = torch

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        torch = self._torch
        with self._lock, torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # onnx2torch's Slice warns on every call
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            out = self.module(x.to(self.device, non_blocking=True))
            if isinstance(out, list | tuple):
                out = out[0]
            return [out.float().cpu().numpy()]


def convert(model_file: Path) -> Any:
    """An ONNX model as a torch module (onnx2torch), after two fixes PaddlePaddle's exports
    need: weights stored as Constant nodes become initializers, and BatchNorm inputs whose
    rank shape inference lost get the rank of the Conv that produces them."""
    try:
        import onnx
        from onnx2torch import convert as onnx2torch_convert
    except ImportError as exc:
        raise ModelUnavailable(
            "OCR backend 'rapidocr_torch' needs onnx and onnx2torch (pip install onnx onnx2torch)"
        ) from exc
    try:
        model = _prepare(onnx.load(str(model_file)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return onnx2torch_convert(model)
    except Exception as exc:
        raise ModelUnavailable(
            f"could not convert {model_file.name} to torch: {one_line(exc)}"
        ) from exc


def _prepare(model: Any) -> Any:
    import onnx

    constants_to_initializers(model.graph)
    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    infos = list(graph.value_info) + list(graph.input) + list(graph.output)
    known = {v.name for v in infos if v.type.tensor_type.HasField("shape")}
    weights = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    for node in graph.node:
        if node.op_type != "BatchNormalization" or node.input[0] in known:
            continue
        conv = producer.get(node.input[0])
        if conv is not None and conv.op_type == "Conv" and conv.input[1] in weights:
            rank = len(weights[conv.input[1]].dims)
            graph.value_info.append(
                onnx.helper.make_tensor_value_info(
                    node.input[0], onnx.TensorProto.FLOAT, [None] * rank
                )
            )
            known.add(node.input[0])
    return model
