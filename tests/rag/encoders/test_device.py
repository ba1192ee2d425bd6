"""Device and precision choice, and the GPU-path options on CPU: preprocessing threads,
autocast and the ONNX text runtime must give the vectors of the plain fp32 path."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rag.device import resolve_device, resolve_dtype
from rag.encoders import build_encoders
from rag.encoders.clip import OpenClipEncoder, _auto_sizes
from rag.errors import ConfigError, ModelUnavailable
from rag.settings import ClipSettings, load_settings
from tests.conftest import tiny_clip


def test_auto_device_follows_what_torch_sees() -> None:
    expected = "cuda" if torch.cuda.is_available() else None
    dev = resolve_device("auto")
    assert dev in ("cuda", "mps", "cpu")
    if expected:
        assert dev == expected
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="unknown torch device 'warp-drive'"):
        resolve_device("warp-drive")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="torch sees no CUDA GPU"):
        resolve_device("cuda")


def test_precision_auto_is_fp32_on_cpu_and_explicit_values_map_to_dtypes() -> None:
    assert resolve_dtype("auto", "cpu") is None
    assert resolve_dtype("fp32", "cuda") is None
    assert resolve_dtype("bf16", "cpu") is torch.bfloat16
    assert resolve_dtype("fp16", "cuda") is torch.float16
    with pytest.raises(ConfigError, match="fp16.*not supported on the CPU"):
        resolve_dtype("fp16", "cpu")


def _jpegs(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        arr = rng.integers(0, 255, (60 + 7 * i, 90, 3), dtype=np.uint8)
        paths.append(folder / f"{i}.jpg")
        Image.fromarray(arr).save(paths[-1], quality=85)
    return paths


def _clip(tmp_path: Path, **options: object) -> OpenClipEncoder:
    """A freshly loaded tiny CLIP with the same random weights every time."""
    enc = OpenClipEncoder(tiny_clip(tmp_path, **options).clip)  # type: ignore[arg-type]
    torch.manual_seed(0)
    enc.load()
    return enc


def test_clip_preprocessing_threads_give_the_same_vectors_in_order(tmp_path: Path) -> None:
    files = _jpegs(tmp_path, 7)
    plain = _clip(tmp_path, clip_batch=3)
    threaded = _clip(tmp_path, clip_batch=3, workers=2)
    # Lazily opened files: decoding happens in the worker threads.
    a = plain.encode_images([Image.open(f) for f in files])
    b = threaded.encode_images([Image.open(f) for f in files])
    assert a.shape == (7, 32)
    np.testing.assert_allclose(a, b, atol=1e-6)
    # Order survives batching: each row is its own image's vector.
    single = plain.encode_images([Image.open(files[5])])
    np.testing.assert_allclose(single[0], b[5], atol=1e-5)
    threaded.close()


def test_clip_batch_and_threads_auto_are_large_on_a_gpu_and_off_on_the_cpu(
    tmp_path: Path,
) -> None:
    auto = ClipSettings()
    assert (auto.batch_size, auto.preprocess_workers) == (0, -1)
    assert _auto_sizes(auto, "cuda") == (256, min(16, os.cpu_count() or 1))
    assert _auto_sizes(auto, "cuda:1")[0] == 256
    assert _auto_sizes(auto, "cpu") == (16, 0)
    assert _auto_sizes(ClipSettings(batch_size=8, preprocess_workers=3), "cuda") == (8, 3)
    enc = _clip(tmp_path)  # the CPU here
    assert (enc.batch_size, enc.preprocess_workers, enc._pool) == (16, 0, None)


def test_clip_bf16_autocast_stays_close_to_fp32(tmp_path: Path) -> None:
    files = _jpegs(tmp_path, 4)
    fp32 = _clip(tmp_path)
    bf16 = _clip(tmp_path, precision="bf16")
    a = fp32.encode_images([Image.open(f) for f in files])
    b = bf16.encode_images([Image.open(f) for f in files])
    cos = (a * b).sum(axis=1)
    assert cos.min() > 0.99, cos  # a tiny random model; real CLIP is checked by the bench
    assert not np.array_equal(a, b)  # autocast really ran


def test_clip_geometry_shrinks_images_to_the_input_without_changing_vectors(
    tmp_path: Path,
) -> None:
    enc = _clip(tmp_path)
    geometry = enc.geometry()
    assert geometry is not None
    rng = np.random.default_rng(3)
    shapes = [(1600, 1200), (40, 300), (20, 10), (32, 32), (33, 97)]
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
              for w, h in shapes]
    shrunk = [geometry(im) for im in images]
    assert {im.size for im in shrunk} == {(32, 32)}  # the tiny model's input side
    np.testing.assert_array_equal(enc.encode_images(images), enc.encode_images(shrunk))
    # Ingest workers receive it pickled; it must not drag torch into them.
    assert b"torch" not in pickle.dumps(geometry)
    assert pickle.loads(pickle.dumps(geometry))(images[0]).tobytes() == shrunk[0].tobytes()


def test_clip_geometry_is_none_when_the_model_preprocesses_otherwise(tmp_path: Path) -> None:
    from torchvision import transforms as T

    enc = _clip(tmp_path)
    enc._preprocess = T.Compose([  # bilinear: the shrunk image would encode differently
        T.Resize(32, interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(32),
        T.ToTensor()])
    assert enc.geometry() is None


def test_text_onnx_runtime_matches_torch_and_caches_its_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MMRAG_TEXT__EXPORT_DIR", raising=False)  # the default: data_dir
    texts = ["rotate the TLS certificate", "renew an SSL cert", "vacuum " * 300, "x"]
    torch_enc = build_encoders(
        load_settings("offline", overrides={"data_dir": tmp_path, "text": {"runtime": "torch"}})
    ).text
    s = load_settings("offline", overrides={"data_dir": tmp_path, "text": {"runtime": "onnx"}})
    onnx_enc = build_encoders(s).text
    assert torch_enc is not None and onnx_enc is not None
    a, b = torch_enc.encode(texts), onnx_enc.encode(texts)
    assert (torch_enc.runtime, onnx_enc.runtime) == ("torch", "onnx")  # type: ignore[attr-defined]
    assert b.shape == (4, 384) and b.dtype == np.float32
    assert ((a * b).sum(axis=1) > 0.9999).all()
    (export,) = (tmp_path / "models").glob("*.onnx")
    stamp = export.stat().st_mtime_ns
    # A process killed mid-export leaves ~90 MB behind; the next load removes it, but
    # never a live exporter's file.
    dead = export.with_suffix(".999999999.raw.onnx")
    live = export.with_suffix(f".{os.getpid()}.tmp")
    dead.write_bytes(b"half")
    live.write_bytes(b"in progress")
    from rag.encoders.text import SentenceTransformerEncoder

    again = SentenceTransformerEncoder(s.text, offline=True, cache_dir=tmp_path / "models")
    np.testing.assert_allclose(again.encode(texts[:2]), b[:2], atol=1e-5)
    assert export.stat().st_mtime_ns == stamp  # reused, not exported again
    assert not dead.exists() and live.exists()


def test_text_bf16_on_cpu_stays_close_to_fp32(tmp_path: Path) -> None:
    texts = ["rotate the TLS certificate", "how do I restore a snapshot of the database"]
    fp32 = build_encoders(load_settings(
        "offline", overrides={"data_dir": tmp_path, "text": {"runtime": "torch"}})).text
    s = load_settings("offline", overrides={
        "data_dir": tmp_path, "text": {"runtime": "torch", "precision": "bf16"}})
    bf16 = build_encoders(s).text
    assert fp32 is not None and bf16 is not None
    cos = (fp32.encode(texts) * bf16.encode(texts)).sum(axis=1)
    assert cos.min() > 0.99


def test_text_runtime_auto_is_openvino_on_cpu_and_torch_for_models_it_cannot_export(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentence_transformers import SentenceTransformer, models

    from rag.encoders.text import SentenceTransformerEncoder, resolve_model_path

    auto = load_settings("offline", overrides={"data_dir": tmp_path}).text
    assert auto.runtime == "auto"
    enc = SentenceTransformerEncoder(auto, offline=True, cache_dir=tmp_path / "models")
    enc.load()
    assert enc.runtime == "openvino"
    # Without OpenVINO installed, auto runs the same export on onnxruntime: same vectors.
    monkeypatch.setitem(sys.modules, "openvino", None)
    plain = SentenceTransformerEncoder(auto, offline=True, cache_dir=tmp_path / "models")
    texts = ["rotate the TLS certificate", "ünïcödé 東京"]
    cos = (enc.encode(texts) * plain.encode(texts)).sum(axis=1)
    assert plain.runtime == "onnx" and cos.min() > 0.9999
    # A projection head after pooling is not something the export reproduces: auto runs it
    # on torch (and says so), an explicit onnx refuses it.
    base = SentenceTransformer(resolve_model_path("all-MiniLM-L6-v2"), device="cpu")
    dense = models.Dense(384, 8)
    SentenceTransformer(modules=[base[0], base[1], dense], device="cpu").save(
        str(tmp_path / "headed"))
    headed = auto.model_copy(update={"model": str(tmp_path / "headed")})
    fallback = SentenceTransformerEncoder(headed, offline=True, cache_dir=tmp_path / "models")
    with caplog.at_level("WARNING"):
        vecs = fallback.encode(["rotate the TLS certificate"])
    assert fallback.runtime == "torch" and vecs.shape == (1, 8)
    assert "runs on torch" in caplog.text and "Transformer + Pooling" in caplog.text
    strict = SentenceTransformerEncoder(headed.model_copy(update={"runtime": "onnx"}),
                                        offline=True, cache_dir=tmp_path / "models")
    with pytest.raises(ConfigError, match="text.runtime: torch"):
        strict.load()


def test_a_damaged_onnx_export_is_named_and_auto_runs_on_torch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from rag.encoders.text import SentenceTransformerEncoder

    auto = load_settings("offline", overrides={"data_dir": tmp_path}).text
    models = tmp_path / "models"
    SentenceTransformerEncoder(auto, offline=True, cache_dir=models).load()
    (export,) = models.glob("*.onnx")
    export.write_bytes(b"not an onnx graph")  # a disk error, or a foreign file
    strict = SentenceTransformerEncoder(
        auto.model_copy(update={"runtime": "onnx"}), offline=True, cache_dir=models)
    with pytest.raises(ModelUnavailable, match="delete that file") as err:
        strict.load()
    assert str(export) in str(err.value)
    fallback = SentenceTransformerEncoder(auto, offline=True, cache_dir=models)
    with caplog.at_level("WARNING"):
        assert fallback.encode(["renew an SSL cert"]).shape == (1, 384)
    assert fallback.runtime == "torch" and "runs on torch" in caplog.text


def test_an_export_dir_that_cannot_be_written_is_named_and_auto_runs_on_torch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from rag.encoders.text import SentenceTransformerEncoder

    blocked = tmp_path / "models"
    blocked.write_text("a file where the export folder should be")  # read-only for root too
    auto = load_settings("offline", overrides={"data_dir": tmp_path}).text
    with caplog.at_level("WARNING"):
        fallback = SentenceTransformerEncoder(auto, offline=True, cache_dir=blocked)
        assert fallback.encode(["renew an SSL cert"]).shape == (1, 384)
    assert fallback.runtime == "torch" and str(blocked) in caplog.text
    strict = SentenceTransformerEncoder(
        auto.model_copy(update={"runtime": "onnx"}), offline=True, cache_dir=blocked)
    with pytest.raises(ModelUnavailable, match="text.export_dir"):
        strict.load()
