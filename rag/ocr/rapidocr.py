"""OCR with RapidOCR (PaddleOCR's PP-OCR models on OpenVINO or onnxruntime).

The ``rapidocr-onnxruntime`` wheel ships its detection, direction and recognition models,
so this backend works offline with nothing to download. RapidOCR's pre- and
post-processing run as they are; the two model sessions run on ``ocr.runtime``. Its
types (numpy arrays, quadrilaterals, its exceptions) stay inside this module.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from rag.errors import FileRejected, MmragError, ModelUnavailable
from rag.ocr.base import quad_to_box, reading_order
from rag.ocr.ctc import CtcLine, PositionDecoder
from rag.ocr.lexicon import Lexicon, english
from rag.ocr.words import apply_splits, halfwidth, word_splits, words_with_positions
from rag.settings import OcrSettings
from rag.types import OcrBox

if TYPE_CHECKING:
    from rapidocr_onnxruntime import RapidOCR

log = logging.getLogger(__name__)

# RapidOCR's defaults are tuned for Chinese photos and read English documents badly. On
# rendered pages and screenshots (DejaVu/Times/Helvetica, 9-28 px text) word recall
# went from about 0.3 to 0.97 with these three changes:
# - no direction classifier: it flips long text lines by 180 degrees and the recogniser
#   then returns garbage for them (upside-down text is not read any more);
# - no upscaling in the detector ("max" instead of "min 736"): blowing small
#   screenshots up 5x splits lines into fragments;
# - a wider box around each detected line (unclip 2.0 instead of 1.6): on tight crops
#   the recogniser drops the spaces between words ("Invoicenumber4521isoverdue").
# Two more for numbers (benchmarks/ocr_cer.py): the page is stretched 1.3x along x
# (``ocr.stretch_x``) so the recogniser's CTC decoder has enough steps per character
# not to merge "000" into "00" or drop spaces ("9,00to61,00" in the example scan), and
# "o"/"O" inside numbers are read as zeros (:func:`fix_digits`).
_TUNING: dict[str, Any] = {
    "use_cls": False,
    "det_limit_type": "max",
    "det_unclip_ratio": 2.0,
}


def engine_options(settings: OcrSettings) -> dict[str, Any]:
    """RapidOCR keyword arguments for these settings (shared with the torch backend)."""
    opts: dict[str, Any] = {
        "text_score": float(settings.min_confidence),
        "max_side_len": int(settings.max_side),
        "det_limit_side_len": int(settings.max_side),
        "rec_batch_num": int(settings.rec_batch_size),
        "print_verbose": False,
        **_TUNING,
    }
    # One engine per worker process, each on one core: onnxruntime's default pool (every
    # core per process) makes N workers fight over N cores. RapidOCR copies these global
    # options into its three sessions.
    opts.update(_threads(settings.threads))
    return opts


class RapidOcr:
    """An :class:`~rag.ocr.base.OcrEngine` over ``rapidocr_onnxruntime.RapidOCR``.

    Construction is cheap; the ONNX sessions are created once, on :meth:`load` or the
    first :meth:`read`. One engine serves all threads: RapidOCR keeps per-call state on
    the instance, so calls are serialised with a lock (onnxruntime already uses every
    core for one image, so parallel calls would not be faster anyway).
    """

    def __init__(self, settings: OcrSettings, options: dict[str, Any] | None = None) -> None:
        """``options`` override RapidOCR constructor arguments over :data:`_TUNING`
        (benchmarks compare detector settings with it)."""
        self.settings = settings
        self.options = {**_TUNING, **(options or {})}
        self._engine: RapidOCR | None = None
        self._lexicon: Lexicon | None = None
        self._lock = threading.Lock()
        # What runs the models once loaded: "openvino", "onnxruntime" or "onnxruntime-cuda".
        self.runtime = ""

    def load(self) -> None:
        """Create the ONNX sessions now (idempotent), e.g. from a CLI command or lifespan."""
        with self._lock:
            self._load_locked()

    def _load_locked(self) -> RapidOCR:
        if self._engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:
                raise ModelUnavailable(
                    "OCR backend 'rapidocr' needs the rapidocr-onnxruntime package "
                    "(pip install rapidocr-onnxruntime), or set ocr.enabled: false"
                ) from exc
            try:
                options = {**engine_options(self.settings), **self._cuda_options(), **self.options}
                engine = RapidOCR(**options)
                self._after_load(engine)
                # Our decoder after the runtime swap: it reads the model's output, which
                # every runtime computes the same, and keeps character positions.
                rec = engine.text_rec
                rec.postprocess_op = PositionDecoder(rec.postprocess_op.character)
                if self.settings.word_repair:
                    self._lexicon = english()
                self._engine = engine
            except MmragError:
                raise
            except Exception as exc:  # onnxruntime / missing model files
                raise ModelUnavailable(
                    f"could not load the RapidOCR models: {exc}. Reinstall "
                    "rapidocr-onnxruntime (its wheel contains the models)"
                ) from exc
        return self._engine

    def _cuda_options(self) -> dict[str, bool]:
        """RapidOCR's CUDA switches, on when onnxruntime has its CUDA provider (the ``gpu``
        extra, onnxruntime-gpu) and ``ocr.device`` resolves to a CUDA device; OpenVINO is
        then not used (``ocr.runtime: openvino`` keeps the CPU)."""
        if self.settings.runtime == "openvino":
            return {}
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return {}  # the CPU wheel: no torch import just to ask about CUDA
        from rag.device import resolve_device

        if not resolve_device(self.settings.device).startswith("cuda"):
            return {}
        return {"det_use_cuda": True, "cls_use_cuda": True, "rec_use_cuda": True}

    def _after_load(self, engine: RapidOCR) -> None:
        """Run the detector and recogniser on ``ocr.runtime``: OpenVINO, or onnxruntime with
        fused graphs (:mod:`rag.ocr.fuse`, ``ocr.fuse_layers``), on CUDA when
        :meth:`_cuda_options` turned it on. Backends that run other sessions override
        this (``torch_ocr``)."""
        if engine.text_rec.session.session.get_providers()[0] == "CUDAExecutionProvider":
            self.runtime = "onnxruntime-cuda"
        elif self.settings.runtime != "onnxruntime" and self._swap_to_openvino(engine):
            self.runtime = "openvino"
            return
        else:
            self.runtime = "onnxruntime"
        if self.settings.fuse_layers:
            from rag.ocr.fuse import fused_session

            for runner in (engine.text_det.infer, engine.text_rec.session):
                runner.session = fused_session(runner.session)

    def _swap_to_openvino(self, engine: RapidOCR) -> bool:
        """Put OpenVINO sessions in place of the detector's and recogniser's; False (with a
        warning) when ``auto`` cannot, raised when ``ocr.runtime`` is ``openvino``."""
        from rag.ocr import openvino_session as ov

        try:
            if self.settings.runtime == "auto" and not ov.available():
                raise ModelUnavailable("the openvino package is not installed")
            det, rec = (
                ov.openvino_session(onnx_file(runner, "run on OpenVINO"), runner.session,
                                    self.settings.threads)
                for runner in (engine.text_det.infer, engine.text_rec.session)
            )
        except ModelUnavailable as exc:
            if self.settings.runtime == "openvino":
                raise
            log.warning("OCR runs on onnxruntime: %s", exc)
            return False
        engine.text_det.infer, engine.text_rec.session = det, rec
        return True

    def read(self, image: Image.Image) -> list[OcrBox]:
        """OCR lines of ``image`` in reading order, boxes normalised to ``image``."""
        s = self.settings
        img, (width, height) = _prepare(image, s.max_side, s.enlarge_below, s.stretch_x)
        with self._lock:
            engine = self._load_locked()
            try:
                result, _elapsed = engine(img)
            except MmragError:
                raise
            except Exception as exc:
                raise FileRejected(f"OCR could not read this image: {exc}") from exc
        return reading_order(self._to_boxes(result, width, height))

    def _to_boxes(self, result: Any, width: int, height: int) -> list[OcrBox]:
        boxes: list[OcrBox] = []
        for item in result or []:
            try:
                quad, text, score = item[0], str(item[1]), float(item[2])
            except (IndexError, TypeError, ValueError):
                continue
            score = min(1.0, max(0.0, score))
            if not text.strip() or score < self.settings.min_confidence:
                continue
            box = quad_to_box(quad, width, height)
            line = item[3] if len(item) > 3 and isinstance(item[3], CtcLine) else None
            boxes.append(line_box(text, box, score, line, self._lexicon))
        return boxes


def line_box(
    text: str,
    box: tuple[float, float, float, float],
    score: float,
    line: CtcLine | None,
    lexicon: Lexicon | None,
) -> OcrBox:
    """One recognised line as an :class:`OcrBox`: fullwidth punctuation as ASCII, the
    spaces the recogniser dropped put back (with ``lexicon``; None: as read), digits
    fixed, and a box per word where the decoder knows the characters' positions."""
    text = halfwidth(text)
    if line is None or len(line.spans) != len(text):
        return OcrBox(fix_digits(text.strip()), box, score)
    splits = word_splits(text, line.gaps, lexicon) if lexicon is not None else []
    x0, y0, x1, y1 = box
    words = tuple(
        (fix_digits(word), (x0 + (x1 - x0) * line.spans[a][0], y0,
                            x0 + (x1 - x0) * line.spans[b][1], y1))
        for word, a, b in words_with_positions(text, splits)
    )
    return OcrBox(fix_digits(apply_splits(text, splits).strip()), box, score, words)


def onnx_file(runner: Any, purpose: str) -> Path:
    """The ONNX file behind one of RapidOCR's ``OrtInferSession`` runners, for backends
    that run it elsewhere (``purpose`` words the error: "convert to torch")."""
    path = getattr(getattr(runner, "session", None), "_model_path", None)
    if not path:
        raise ModelUnavailable(f"could not find the RapidOCR model file to {purpose}")
    return Path(path)


def _threads(n: int) -> dict[str, int]:
    """onnxruntime intra-op threads for every model; nothing for its default."""
    return {"intra_op_num_threads": n, "inter_op_num_threads": 1} if n > 0 else {}


# A number as OCR reads it: digits with "o"/"O" mixed in, commas and dots between.
_NUMBERISH = re.compile(r"(?<![A-Za-z])[0-9oO](?:[0-9oO]|[.,](?=[0-9oO]))*(?![A-Za-z])")


def fix_digits(text: str) -> str:
    """Read "o"/"O" as zero inside numbers: "9,o00" -> "9,000", "1o24" -> "1024".

    The recogniser confuses the two in digit runs (its Chinese+Latin charset has both);
    a token counts as a number only when it holds a real digit and touches no letter,
    so words ("on", "OO") and identifiers ("v2o") are left alone. Pure.
    """

    def repl(match: re.Match[str]) -> str:
        token = match.group(0)
        if not any(ch.isdigit() for ch in token):
            return token
        return token.replace("o", "0").replace("O", "0")

    return _NUMBERISH.sub(repl, text)


# RapidOCR scales images up until the shorter side is 30 px: a 2000 x 1 strip would
# become 60000 x 30 and take seconds. Padding the short side instead costs nothing.
MIN_SIDE = 32


def target_size(
    width: int, height: int, max_side: int, enlarge_below: int = 0, stretch_x: float = 1.0
) -> tuple[int, int]:
    """The size OCR runs at: enlarged up to 2x when the longer side is under
    ``enlarge_below``, stretched ``stretch_x`` along x, then scaled to fit ``max_side``.
    Pure; boxes are normalised, so any of these scalings leaves them valid."""
    scale = 1.0
    longer = max(width, height)
    if enlarge_below > 0 and 0 < longer < enlarge_below:
        scale = min(2.0, enlarge_below / longer)
    w, h = width * scale * max(1.0, stretch_x), height * scale
    if max_side > 0 and max(w, h) > max_side:
        shrink = max_side / max(w, h)
        w, h = w * shrink, h * shrink
    return max(1, round(w)), max(1, round(h))


def _prepare(
    image: Image.Image, max_side: int, enlarge_below: int = 0, stretch_x: float = 1.0
) -> tuple[Image.Image, tuple[int, int]]:
    """An RGB copy at :func:`target_size`, and the size of its content.

    Bigger inputs only cost time (the detector works at about 1000 px) and memory;
    boxes come back normalised, so they still fit the original image. Thin images are
    padded with white (right and bottom, so pixel coordinates of the content do not move)
    and boxes are normalised to the content, not the padding.
    """
    img = image if image.mode == "RGB" else image.convert("RGB")
    width, height = target_size(img.width, img.height, max_side, enlarge_below, stretch_x)
    if (width, height) != img.size:
        img = img.resize((width, height), Image.Resampling.LANCZOS)
    if width < MIN_SIDE or height < MIN_SIDE:
        canvas = Image.new("RGB", (max(width, MIN_SIDE), max(height, MIN_SIDE)), "white")
        canvas.paste(img, (0, 0))
        img = canvas
    return img, (width, height)
