"""Faster PP-OCR graphs for onnxruntime: the same models with their element-wise chains folded.

PaddlePaddle's ONNX export of PP-OCRv4 (PP-LCNetV3 backbone) spells every layer out in
single element-wise nodes that onnxruntime does not fuse:

- a learnable scalar affine after each convolution, ``Conv -> Mul(s) -> Add(a)``;
- hard-swish as four nodes, ``x * Clip(x + 3, 0, 6) / 6``;
- another scalar affine after the activation, often feeding a 1x1 convolution.

On two cores these element-wise passes took 45% of the recogniser's time. :func:`fuse`
rewrites them: the first affine goes into the convolution's weights and bias, hard-swish
becomes ``x * HardSigmoid(x)`` (two nodes, opset 6, so the model's opset stays), and an
affine that feeds an unpadded 1x1 convolution goes into that convolution. The results
are the same function up to float rounding (max abs difference about 5e-6 on the
recogniser's logits, every CTC argmax unchanged); :func:`fused_session` checks that on a
probe input before it replaces a session and keeps the original otherwise.
``benchmarks/ocr_cer.py`` measures the speed and the text of both.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rag.errors import one_line

log = logging.getLogger(__name__)

# Largest difference from the original model's output that still counts as the same model.
TOLERANCE = 1e-3


def fuse(model: Any) -> tuple[Any, dict[str, int]]:
    """``model`` (an ``onnx.ModelProto``, changed in place) with the chains above folded,
    and how many of each rewrite were made."""
    return _Fuser(model).run()


def constants_to_initializers(graph: Any) -> None:
    """Move the tensors of ``Constant`` nodes into ``graph``'s initializers (in place):
    PaddlePaddle's export stores its weights as Constant nodes, and both the rewrites here
    and onnx2torch (``torch_ocr``) read weights from initializers."""
    import onnx

    kept = []
    for node in graph.node:
        attrs = list(node.attribute)
        if node.op_type == "Constant" and len(attrs) == 1 and attrs[0].name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(attrs[0].t)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)


class _Fuser:
    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        self.model = model
        self.graph = model.graph
        self.counts: dict[str, int] = defaultdict(int)
        constants_to_initializers(self.graph)
        self.weights: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t).copy() for t in self.graph.initializer
        }
        self.outputs = {o.name for o in self.graph.output}

    def run(self) -> tuple[Any, dict[str, int]]:
        self._fold_affine_into_conv()
        self._hard_swish()
        self._fold_affine_into_next_conv()
        self._write_weights()
        return self.model, dict(self.counts)

    # -- graph helpers ---------------------------------------------------------------

    def _set_nodes(self, nodes: list[Any]) -> None:
        del self.graph.node[:]
        self.graph.node.extend(nodes)

    def _consumers(self) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = defaultdict(list)
        for node in self.graph.node:
            for name in node.input:
                found[name].append(node)
        return found

    def _sole(self, consumers: dict[str, list[Any]], name: str, op: str) -> Any | None:
        """The only node reading ``name``, if it is an ``op`` and ``name`` is not a graph
        output (a folded-away tensor must not be needed anywhere else)."""
        if name in self.outputs:
            return None
        found = consumers.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op else None

    def _scalar(self, node: Any, data: str) -> float | None:
        """The constant scalar operand of binary ``node`` whose other operand is ``data``."""
        if len(node.input) != 2 or data not in node.input:
            return None
        other = node.input[1] if node.input[0] == data else node.input[0]
        value = self.weights.get(other)
        return float(value.ravel()[0]) if value is not None and value.size == 1 else None

    def _data_input(self, node: Any) -> str | None:
        """The one non-constant input of binary ``node``."""
        data = [name for name in node.input if name not in self.weights]
        return data[0] if len(node.input) == 2 and len(data) == 1 else None

    def _conv_weights(self, conv: Any) -> tuple[np.ndarray, np.ndarray] | None:
        if conv.input[1] not in self.weights:
            return None
        kernel = self.weights[conv.input[1]]
        if len(conv.input) > 2:
            if conv.input[2] not in self.weights:
                return None
            return kernel, self.weights[conv.input[2]]
        return kernel, np.zeros(kernel.shape[0], dtype=np.float32)

    def _set_conv_weights(self, conv: Any, kernel: np.ndarray, bias: np.ndarray) -> None:
        kernel_name = f"{conv.name or conv.output[0]}.fused_w"
        bias_name = f"{conv.name or conv.output[0]}.fused_b"
        self.weights[kernel_name] = kernel.astype(np.float32)
        self.weights[bias_name] = bias.astype(np.float32)
        inputs = [conv.input[0], kernel_name, bias_name]
        del conv.input[:]
        conv.input.extend(inputs)

    def _write_weights(self) -> None:
        from onnx import numpy_helper

        used = {name for node in self.graph.node for name in node.input}
        del self.graph.initializer[:]
        self.graph.initializer.extend(
            numpy_helper.from_array(value, name)
            for name, value in self.weights.items()
            if name in used
        )

    # -- rewrites --------------------------------------------------------------------

    def _fold_affine_into_conv(self) -> None:
        """``Conv -> Mul(s) [-> Add(a)]`` becomes one Conv with ``s*W`` and ``s*b + a``."""
        consumers = self._consumers()
        dropped: set[int] = set()
        for conv in list(self.graph.node):
            if conv.op_type != "Conv" or (wb := self._conv_weights(conv)) is None:
                continue
            mul = self._sole(consumers, conv.output[0], "Mul")
            scale = self._scalar(mul, conv.output[0]) if mul is not None else None
            if mul is None or scale is None:
                continue
            kernel, bias = wb[0] * np.float32(scale), wb[1] * np.float32(scale)
            last = mul
            add = self._sole(consumers, mul.output[0], "Add")
            shift = self._scalar(add, mul.output[0]) if add is not None else None
            if add is not None and shift is not None:
                bias = bias + np.float32(shift)
                last = add
                dropped.add(id(add))
            dropped.add(id(mul))
            self._set_conv_weights(conv, kernel, bias)
            conv.output[0] = last.output[0]
            self.counts["conv_affine"] += 1
        self._set_nodes([n for n in self.graph.node if id(n) not in dropped])

    def _hard_swish(self) -> None:
        """``Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)`` becomes ``Mul(x, HardSigmoid(x))``."""
        from onnx import helper

        consumers = self._consumers()
        replaced: dict[int, list[Any]] = {}
        dropped: set[int] = set()
        for add in list(self.graph.node):
            if add.op_type != "Add" or (x := self._data_input(add)) is None:
                continue
            if self._scalar(add, x) != 3.0:
                continue
            clip = self._sole(consumers, add.output[0], "Clip")
            if clip is None or len(clip.input) != 3 or clip.attribute:
                continue
            low, high = (self.weights.get(name) for name in clip.input[1:])
            if low is None or high is None or float(low) != 0.0 or float(high) != 6.0:
                continue
            mul = self._sole(consumers, clip.output[0], "Mul")
            if mul is None or sorted(mul.input) != sorted([x, clip.output[0]]):
                continue
            div = self._sole(consumers, mul.output[0], "Div")
            if div is None or div.input[0] != mul.output[0]:
                continue
            if self._scalar(div, div.input[0]) != 6.0:
                continue
            gate = f"{add.output[0]}.hard_sigmoid"
            replaced[id(add)] = [
                helper.make_node("HardSigmoid", [x], [gate], alpha=1 / 6, beta=0.5),
                helper.make_node("Mul", [x, gate], [div.output[0]]),
            ]
            dropped.update({id(clip), id(mul), id(div)})
            self.counts["hard_swish"] += 1
        nodes: list[Any] = []
        for node in self.graph.node:
            if id(node) in replaced:
                nodes.extend(replaced[id(node)])
            elif id(node) not in dropped:
                nodes.append(node)
        self._set_nodes(nodes)

    def _fold_affine_into_next_conv(self) -> None:
        """``Mul(x, s) [-> Add(a)] -> Conv1x1`` (no padding) becomes one Conv reading ``x``
        with ``s*W`` and ``b + a*sum(W)``. Padded convolutions are left alone: their zero
        padding would see the affine's shift."""
        from onnx import helper

        consumers = self._consumers()
        dropped: set[int] = set()
        for mul in list(self.graph.node):
            if mul.op_type != "Mul" or (x := self._data_input(mul)) is None:
                continue
            if (scale := self._scalar(mul, x)) is None:
                continue
            add = self._sole(consumers, mul.output[0], "Add")
            shift = self._scalar(add, mul.output[0]) if add is not None else None
            tail = add if add is not None and shift is not None else mul
            conv = self._sole(consumers, tail.output[0], "Conv")
            if conv is None or conv.input[0] != tail.output[0]:
                continue
            if (wb := self._conv_weights(conv)) is None or wb[0].shape[2:] != (1, 1):
                continue
            attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
            if any(attrs.get("pads", [])) or attrs.get("auto_pad", b"NOTSET") not in (
                b"NOTSET", b"VALID"
            ):
                continue
            kernel, bias = wb
            bias = bias + np.float32(shift or 0.0) * kernel.sum(axis=(1, 2, 3))
            self._set_conv_weights(conv, kernel * np.float32(scale), bias)
            conv.input[0] = x
            dropped.add(id(mul))
            if tail is add:
                dropped.add(id(add))
            self.counts["affine_conv1x1"] += 1
        self._set_nodes([n for n in self.graph.node if id(n) not in dropped])


def fused_session(session: Any) -> Any:
    """An onnxruntime session over the fused model behind ``session`` (same options and
    providers), or ``session`` itself when the model cannot be read, has nothing to fuse,
    or the fused one disagrees with it on a probe input (logged, never raised)."""
    import onnx
    import onnxruntime as ort

    path = getattr(session, "_model_path", None)
    try:
        if not path:
            raise ValueError("the session does not say which model file it runs")
        model, counts = fuse(onnx.load(str(path)))
        if not counts:
            return session
        providers = session.get_providers()
        options = session.get_provider_options()
        fused = ort.InferenceSession(
            model.SerializeToString(),
            sess_options=session.get_session_options(),
            providers=providers,
            provider_options=[options.get(name, {}) for name in providers],
        )
        original_input = session.get_inputs()[0].name
        fused_input = fused.get_inputs()[0].name
        difference = probe_difference(
            lambda x: session.run(None, {original_input: x}),
            lambda x: fused.run(None, {fused_input: x}),
        )
        if not difference <= TOLERANCE:
            raise ValueError(f"its output differs by {difference:.2g} on a probe input")
    except Exception as exc:
        log.warning("OCR runs %s unfused: %s", path or "the model", one_line(exc))
        return session
    log.debug("OCR %s fused: %s", path, counts)
    return fused


Runner = Callable[[np.ndarray], Sequence[np.ndarray]]


def probe_difference(original: Runner, candidate: Runner, channels: int = 3) -> float:
    """Largest output difference of two runners of one model on one small random image
    (64 x 128: the detector needs sides divisible by 32, the recogniser takes any)."""
    probe = np.random.default_rng(0).random((1, channels, 64, 128), dtype=np.float32) * 2 - 1
    a, b = original(probe), candidate(probe)
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))
