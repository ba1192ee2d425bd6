"""The ``cross_encoder`` reranker: a sentence-transformers ``CrossEncoder`` reads the query
and each candidate together and scores the pair.

Bi-encoders (MiniLM, CLIP) embed query and passage apart, so a passage that shares the
question's words but not its intent can outrank the answer; a cross-encoder sees both at
once. Any CrossEncoder loads: a hub name (``cross-encoder/ms-marco-MiniLM-L6-v2``,
``BAAI/bge-reranker-base``) from the HF cache, or a local folder. The model loads once,
lazily or on :meth:`CrossEncoderReranker.load`; its types stay in this module.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from rag.errors import ModelUnavailable, one_line
from rag.rerank.base import keep_unscored_slots
from rag.settings import RetrievalSettings
from rag.types import Hit, Vector

if TYPE_CHECKING:
    from PIL import Image


def source_words(source: str) -> str:
    """``docs/pg_vacuum-tuning.md`` -> ``pg vacuum tuning``: the file name as words, the
    same header the text vectors were embedded with."""
    stem = PurePosixPath(source.replace("\\", "/")).stem
    return " ".join(re.sub(r"[_\-.]+|(?<=[a-z])(?=[A-Z])", " ", stem).split())


def passage(hit: Hit, max_chars: int = 4000) -> str:
    """What the cross-encoder reads for a hit: its file name as words, then its text."""
    body = " ".join(hit.text.split())[:max_chars]
    if not body:
        return ""
    header = source_words(hit.source)
    return f"{header}: {body}" if header else body


class CrossEncoderReranker:
    """Scores the top ``retrieval.cross_encoder.candidates`` fused hits with a CrossEncoder.

    Hits without text (a photo with no OCR text) cannot be judged by a text model and
    keep their fused slot; the scored ones are sorted around them.
    """

    needs_vectors = False

    def __init__(self, settings: RetrievalSettings, offline: bool = False) -> None:
        self.settings = settings.cross_encoder
        self.offline = offline
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.settings.model

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            try:
                from sentence_transformers import CrossEncoder
            except ImportError as exc:  # pragma: no cover - a declared dependency
                raise ModelUnavailable(
                    "the cross_encoder reranker needs sentence-transformers "
                    "(pip install sentence-transformers)"
                ) from exc
            path = Path(self.name).expanduser()
            target = str(path) if path.is_dir() else self.name
            try:
                self._model = CrossEncoder(
                    target,
                    device=self.settings.device,
                    max_length=self.settings.max_length,
                    local_files_only=self.offline,
                )
            except Exception as exc:  # OSError, hub errors, a folder that is not a model
                raise ModelUnavailable(
                    f"cross-encoder {self.name!r} could not be loaded ({one_line(exc)}). "
                    "Provide the weights: set retrieval.cross_encoder.model "
                    "(MMRAG_RETRIEVAL__CROSS_ENCODER__MODEL) to a local CrossEncoder folder, "
                    "or download it into the HF cache on a connected machine (e.g. `hf "
                    f"download {self.name}`) and run with HF_HUB_OFFLINE=1; or choose "
                    "another retrieval.reranker"
                ) from exc

    def scores(self, text: str, hits: list[Hit]) -> dict[int, float]:
        """Cross-encoder score of every candidate (among the first ``candidates``) that
        has text, by index in ``hits``."""
        idx = [i for i, h in enumerate(hits[: max(0, self.settings.candidates)])
               if passage(h)]
        if not idx or not text.strip():
            return {}
        self.load()
        pairs = [(text, passage(hits[i])) for i in idx]
        raw = self._model.predict(
            pairs, batch_size=self.settings.batch_size, show_progress_bar=False
        )
        return {i: float(s) for i, s in zip(idx, list(raw), strict=True)}

    def rerank_query(
        self, text: str, image: Image.Image | None, hits: list[Hit], limit: int
    ) -> list[Hit]:
        """An image-only query (no text) keeps the fused order: there is nothing to read."""
        head = hits[: max(0, self.settings.candidates)]
        ordered = keep_unscored_slots(head, self.scores(text, head))
        return (ordered + hits[len(head):])[:limit]

    def rerank(self, query: list[tuple[str, Vector]], hits: list[Hit], limit: int) -> list[Hit]:
        """Without the query text there is nothing to score: the fused order stands."""
        return hits[:limit]
