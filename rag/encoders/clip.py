"""CLIP image and text towers from open_clip.

The model is any open_clip architecture name plus a ``pretrained`` tag (``laion2b_s34b_b79k``)
or a local checkpoint file. ``model_config_path`` registers an extra JSON model config
(open_clip's own format), which is how tests build a tiny randomly initialised CLIP.

On a GPU the forward pass is cheap (ViT-B-32 runs over 20,000 images/s in bf16) and
decoding plus resizing is the bottleneck, so ``preprocess_workers`` threads prepare the
next images while the model runs (PIL releases the GIL while it decodes and resamples),
and ``precision`` runs the model under bf16/fp16 autocast. Ingest goes one step further:
its worker processes shrink every picture and page to the model's input with
:meth:`OpenClipEncoder.geometry` before shipping it back, so the main process receives
224 x 224 pixels instead of a rendered page of megabytes, and resizes nothing.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rag.device import inference, resolve_device, resolve_dtype
from rag.errors import ConfigError, ModelUnavailable, one_line
from rag.settings import ClipSettings


class PixelGeometry:
    """CLIP's resize and centre crop in plain PIL, without torch: what an ingest worker
    process applies to a picture before shipping it to the encoder. The encoder's own
    preprocessing maps the result to exactly the tensor of the original image (resizing
    and cropping an image already at the input size leave it as it is);
    :meth:`OpenClipEncoder.geometry` checks this on probe images before handing it out."""

    def __init__(self, side: int) -> None:
        self.side = side

    def __call__(self, image: Image.Image) -> Image.Image:
        side = self.side
        img = image.convert("RGB")
        w, h = img.size
        # torchvision's Resize(int): the shorter side to ``side``, the longer one truncated.
        short, long = (w, h) if w <= h else (h, w)
        if short != side:
            new_long = int(side * long / short)
            img = img.resize((side, new_long) if w <= h else (new_long, side),
                             Image.Resampling.BICUBIC)
        w, h = img.size
        left, top = int(round((w - side) / 2.0)), int(round((h - side) / 2.0))
        return img.crop((left, top, left + side, top + side))


def _auto_sizes(s: ClipSettings, device: str) -> tuple[int, int]:
    """Images per forward pass and preprocessing threads, ``auto`` (0 / -1) resolved: on
    a GPU 256 and one thread per core up to 16 (an H200: 90 images/s in the calling
    thread, 490-530 with 15 threads and batches of 256); on the CPU 16 and none, since
    the model itself is the bottleneck there (~11 images/s on two cores)."""
    gpu = not device.startswith("cpu")
    batch = s.batch_size if s.batch_size > 0 else (256 if gpu else 16)
    if s.preprocess_workers >= 0:
        return batch, s.preprocess_workers
    return batch, min(16, os.cpu_count() or 1) if gpu else 0


class OpenClipEncoder:
    def __init__(self, settings: ClipSettings) -> None:
        self.settings = settings
        self.name = f"{settings.model}/{settings.checkpoint or settings.pretrained or 'random'}"
        self._model: Any = None
        self._preprocess: Any = None
        self._tokenizer: Any = None
        self._dim: int | None = None
        self._device = "cpu"
        self._dtype: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._input_side = 224
        # clip.batch_size and clip.preprocess_workers with "auto" resolved for the device.
        self.batch_size = max(1, settings.batch_size)
        self.preprocess_workers = max(0, settings.preprocess_workers)
        self._geometry: list[PixelGeometry | None] = []  # computed once, on first use
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import open_clip
            import torch

            s = self.settings
            device = resolve_device(s.device)
            dtype = resolve_dtype(s.precision, device)
            if s.model_config_path:
                cfg = Path(s.model_config_path).expanduser()
                if not cfg.is_file():
                    raise ConfigError(f"clip.model_config_path {cfg} does not exist")
                open_clip.add_model_config(cfg)
            if s.model not in open_clip.list_models():
                raise ConfigError(
                    f"unknown open_clip model {s.model!r}; see open_clip.list_models() "
                    "or set clip.model_config_path to a JSON model config"
                )
            pretrained = s.checkpoint or s.pretrained
            if s.checkpoint and not Path(s.checkpoint).expanduser().is_file():
                raise ModelUnavailable(f"clip.checkpoint {s.checkpoint} does not exist")
            try:
                model, _, preprocess = open_clip.create_model_and_transforms(
                    s.model, pretrained=pretrained, device=device
                )
            except Exception as exc:  # hub errors, RuntimeError for unknown tags
                raise ModelUnavailable(
                    f"CLIP model {s.model!r} with pretrained={pretrained!r} could not be loaded "
                    f"({one_line(exc)}). Provide the weights: download them on a connected machine "
                    "(open_clip caches them in the HF cache) and run with HF_HUB_OFFLINE=1, or "
                    "set clip.checkpoint (MMRAG_CLIP__CHECKPOINT) to a local .pt/.safetensors "
                    "file, or use the offline profile (--profile offline) which has CLIP off."
                ) from exc
            model.eval()
            self._tokenizer = open_clip.get_tokenizer(s.model)
            with torch.no_grad():
                probe = model.encode_text(self._tokenizer(["probe"]).to(device))
            self._dim = int(probe.shape[-1])
            self._device, self._dtype = device, dtype
            size = getattr(model.visual, "image_size", 224)
            self._input_side = int(max(size) if isinstance(size, tuple | list) else size)
            self._preprocess = preprocess
            self.batch_size, self.preprocess_workers = _auto_sizes(s, device)
            if self.preprocess_workers > 0:
                self._pool = ThreadPoolExecutor(
                    self.preprocess_workers, thread_name_prefix="clip-preprocess"
                )
            self._model = model

    def geometry(self) -> PixelGeometry | None:
        """The resize and crop of this model's preprocessing as a picklable function that
        needs no torch, or None when this model preprocesses otherwise (another resize mode
        or interpolation): checked on probe images of several shapes, where the shrunk image
        must give exactly the original's input tensor."""
        self.load()
        if not self._geometry:
            self._geometry.append(self._checked_geometry())
        return self._geometry[0]

    def _checked_geometry(self) -> PixelGeometry | None:
        import torch

        geometry = PixelGeometry(self._input_side)
        rng = np.random.default_rng(0)
        side = self._input_side
        for w, h in ((4 * side, 3 * side), (side, 5 * side), (side // 2 + 1, side // 3 + 1),
                     (side, side), (side + 1, 3 * side + 7), (7, side)):
            probe = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
            if not torch.equal(self._preprocess(probe), self._preprocess(geometry(probe))):
                return None
        return geometry

    def close(self) -> None:
        """Stop the preprocessing threads (the model stays loaded)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    @property
    def device(self) -> str:
        """The torch device the model runs on (after :meth:`load`)."""
        self.load()
        return self._device

    @property
    def dim(self) -> int:
        self.load()
        assert self._dim is not None
        return self._dim

    @staticmethod
    def _normalise(x: Any) -> np.ndarray:
        arr = x.detach().float().cpu().numpy()
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        return (arr / np.maximum(norms, 1e-12)).astype(np.float32)

    def _prepare(self, image: Image.Image) -> Any:
        """Decode (lazily opened images decode here), resize, crop, normalise: a CHW tensor."""
        if self.settings.jpeg_draft and image.format == "JPEG":
            side = self._input_side
            image.draft("RGB", (side, side))  # no-op once the image is decoded
        return self._preprocess(image.convert("RGB"))

    def _prepared(self, images: list[Image.Image]) -> Iterator[Any]:
        """Preprocessed tensors in order; with workers, up to two batches run ahead so
        memory stays bounded on any number of images."""
        pool = self._pool
        if pool is None:
            yield from (self._prepare(im) for im in images)
            return
        ahead = max(2 * self.batch_size, 2 * self.preprocess_workers)
        pending: deque[Future[Any]] = deque()
        it = iter(images)
        for im in it:
            pending.append(pool.submit(self._prepare, im))
            if len(pending) >= ahead:
                break
        while pending:
            yield pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(self._prepare, nxt))

    def encode_images(self, images: list[Image.Image]) -> np.ndarray:
        self.load()
        import torch

        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        bs = self.batch_size
        on_gpu = self._device.startswith("cuda")
        stream = self._prepared(images)
        for i in range(0, len(images), bs):
            n = min(bs, len(images) - i)
            batch = torch.stack([next(stream) for _ in range(n)])
            if on_gpu:
                batch = batch.pin_memory().to(self._device, non_blocking=True)
            with inference(self._device, self._dtype):
                out.append(self._normalise(self._model.encode_image(batch)))
        return np.concatenate(out)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        bs = self.batch_size * 4
        for i in range(0, len(texts), bs):
            tokens = self._tokenizer(texts[i : i + bs]).to(self._device)
            with inference(self._device, self._dtype):
                out.append(self._normalise(self._model.encode_text(tokens)))
        return np.concatenate(out)
