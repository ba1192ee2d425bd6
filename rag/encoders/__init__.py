"""Encoder registries and the :class:`Encoders` bundle a pipeline holds.

A new backend is one module plus one entry in the dict of its stage. Loaded models are
cached per process, keyed by their settings, so several pipelines (tests, API workers)
share one copy of a model instead of loading it again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.encoders.base import ImageTextEncoder, SparseEncoder, TextEncoder
from rag.errors import ConfigError
from rag.settings import ClipSettings, Settings, SparseSettings, TextEncoderSettings
from rag.types import BM25, CLIP, TEXT


def _open_clip(s: ClipSettings, offline: bool) -> ImageTextEncoder:
    from rag.encoders.clip import OpenClipEncoder

    return OpenClipEncoder(s)


def _sentence_transformers(s: TextEncoderSettings, offline: bool, cache: Path) -> TextEncoder:
    from rag.encoders.text import SentenceTransformerEncoder

    return SentenceTransformerEncoder(s, offline=offline, cache_dir=cache)


def _bm25(s: SparseSettings) -> SparseEncoder:
    from rag.encoders.sparse import Bm25Encoder

    return Bm25Encoder(s)


CLIP_BACKENDS: dict[str, Callable[[ClipSettings, bool], ImageTextEncoder]] = {
    "open_clip": _open_clip
}
# Text backends also get a cache folder (``<data_dir>/models``) for derived models such as
# an ONNX export.
TEXT_BACKENDS: dict[str, Callable[[TextEncoderSettings, bool, Path], TextEncoder]] = {
    "sentence_transformers": _sentence_transformers
}
SPARSE_BACKENDS: dict[str, Callable[[SparseSettings], SparseEncoder]] = {"bm25": _bm25}


def _pick(registry: dict[str, Callable], backend: str, stage: str) -> Callable:  # type: ignore[type-arg]
    try:
        return registry[backend]
    except KeyError:
        raise ConfigError(
            f"unknown {stage} backend {backend!r}; choose one of {sorted(registry)}"
        ) from None


@functools.lru_cache(maxsize=8)
def _clip_cached(key: str, offline: bool) -> ImageTextEncoder:
    s = ClipSettings.model_validate_json(key)
    return _pick(CLIP_BACKENDS, s.backend, "clip")(s, offline)


@functools.lru_cache(maxsize=8)
def _text_cached(key: str, offline: bool, cache: str) -> TextEncoder:
    s = TextEncoderSettings.model_validate_json(key)
    return _pick(TEXT_BACKENDS, s.backend, "text encoder")(s, offline, Path(cache))


@functools.lru_cache(maxsize=8)
def _sparse_cached(key: str) -> SparseEncoder:
    s = SparseSettings.model_validate_json(key)
    return _pick(SPARSE_BACKENDS, s.backend, "sparse encoder")(s)


@dataclass
class Encoders:
    """The encoders a collection's vectors come from; ``None`` where a path is off."""

    clip: ImageTextEncoder | None
    text: TextEncoder | None
    sparse: SparseEncoder | None

    def load(self) -> None:
        """Load every model now (CLI commands, API start-up) so errors come early."""
        for enc in (self.clip, self.text):
            if enc is not None:
                enc.load()

    def dense_dims(self) -> dict[str, int]:
        dims: dict[str, int] = {}
        if self.clip is not None:
            dims[CLIP] = self.clip.dim
        if self.text is not None:
            dims[TEXT] = self.text.dim
        return dims

    def sparse_names(self) -> tuple[str, ...]:
        return (BM25,) if self.sparse is not None else ()


def build_encoders(settings: Settings) -> Encoders:
    """Encoders for the enabled paths; models are cached per process by their settings
    (settings models are unhashable, so the cache key is their JSON)."""
    clip, text, sparse = settings.clip, settings.text, settings.sparse
    off = settings.offline
    return Encoders(
        clip=_clip_cached(clip.model_dump_json(), off) if clip.enabled else None,
        text=(
            _text_cached(text.model_dump_json(), off,
                         text.export_dir or str(settings.data_path / "models"))
            if text.enabled
            else None
        ),
        sparse=_sparse_cached(sparse.model_dump_json()) if sparse.enabled else None,
    )
