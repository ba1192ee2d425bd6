"""PP-OCR's detector and recogniser on OpenVINO's CPU runtime (``ocr.runtime``).

OpenVINO compiles RapidOCR's own ONNX files (no conversion step, nothing cached on disk)
and runs them about 1.4x faster than onnxruntime with the fused graphs of
:mod:`rag.ocr.fuse` on one thread per worker, the ingest default (benchmarks/ENCODERS.md);
on two threads the gain is 1.2x. Precision is pinned to f32, so CPUs with bf16 units do
not change the text. RapidOCR's pre- and post-processing stay as they are; only the two
inference sessions are swapped, as ``torch_ocr`` does for its GPU route.

Each compiled model keeps per-shape kernels: a worker process's OCR engine peaks around
0.8 GB resident on 2000 px pages (onnxruntime: about 0.36 GB).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ModelUnavailable, one_line
from rag.ocr.fuse import TOLERANCE, probe_difference


def available() -> bool:
    """Whether the ``openvino`` package can be imported here."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


class OpenVinoSession:
    """Callable like RapidOCR's ``OrtInferSession``: a float32 NCHW batch in, ``[output]``
    out, computed by OpenVINO on the CPU with ``threads`` threads (0: its default)."""

    def __init__(self, model_path: str, threads: int) -> None:
        import openvino as ov

        # No thread pinning: OpenVINO pins each process's threads from core 0, so two
        # single-threaded ingest workers shared one core (measured: 1.5x slower wall).
        config: dict[str, Any] = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
            "ENABLE_CPU_PINNING": False,
        }
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(model_path), "CPU", config)
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()

    @property
    def threads(self) -> int:
        return int(self.compiled.get_property("INFERENCE_NUM_THREADS"))

    @property
    def pinned(self) -> bool:
        return bool(self.compiled.get_property("ENABLE_CPU_PINNING"))

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        with self._lock:  # one infer request: its output buffer is reused by the next call
            out = self._request.infer([np.ascontiguousarray(batch, dtype=np.float32)])
            return [np.array(out[0], copy=True)]


def openvino_session(path: Path, session: Any, threads: int) -> OpenVinoSession:
    """An :class:`OpenVinoSession` over the ONNX file ``path``, checked on a probe input
    against ``session``, the onnxruntime session RapidOCR made of it.

    Raises :class:`~rag.errors.ModelUnavailable` naming the model when OpenVINO is missing,
    cannot compile it, or computes something else."""
    try:
        compiled = OpenVinoSession(str(path), threads)
    except ImportError as exc:
        raise ModelUnavailable(
            "ocr.runtime 'openvino' needs the openvino package (pip install openvino), "
            "or set ocr.runtime: onnxruntime"
        ) from exc
    except Exception as exc:
        raise ModelUnavailable(
            f"OpenVINO could not compile {path}: {one_line(exc)}; set ocr.runtime: onnxruntime"
        ) from exc
    name = session.get_inputs()[0].name
    difference = probe_difference(lambda x: session.run(None, {name: x}), compiled)
    if not difference <= TOLERANCE:
        raise ModelUnavailable(
            f"OpenVINO's output for {path} differs from onnxruntime's by {difference:.2g} "
            "on a probe input; set ocr.runtime: onnxruntime"
        )
    return compiled
