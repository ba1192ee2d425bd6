"""CLIP image and text towers from open_clip.

The model is any open_clip architecture name plus a ``pretrained`` tag (``laion2b_s34b_b79k``)
or a local checkpoint file. ``model_config_path`` registers an extra JSON model config
(open_clip's own format), which is how tests build a tiny randomly initialised CLIP.

On a GPU the forward pass is cheap (ViT-B-32 runs over 20,000 images/s in bf16) and
decoding plus resizing is the bottleneck, so ``preprocess_workers`` threads prepare the
next images while the model runs (PIL releases the GIL while it decodes and resamples),
and ``precision`` runs the model under bf16/fp16 autocast.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.device import inference, resolve_device, resolve_dtype
from rag.errors import ConfigError, ModelUnavailable, one_line
from rag.settings import ClipSettings

if TYPE_CHECKING:
    from PIL import Image


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
            if s.preprocess_workers > 0:
                self._pool = ThreadPoolExecutor(
                    s.preprocess_workers, thread_name_prefix="clip-preprocess"
                )
            self._model = model

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
        ahead = max(2 * self.settings.batch_size, 2 * self.settings.preprocess_workers)
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
        bs = self.settings.batch_size
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
        bs = self.settings.batch_size * 4
        for i in range(0, len(texts), bs):
            tokens = self._tokenizer(texts[i : i + bs]).to(self._device)
            with inference(self._device, self._dtype):
                out.append(self._normalise(self._model.encode_text(tokens)))
        return np.concatenate(out)
