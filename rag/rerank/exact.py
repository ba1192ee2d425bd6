"""The ``exact`` reranker: re-score every fused candidate on all its vectors, then MMR.

Fusion inside the store sees each path's top-k only; a candidate found by one path has no
score from the others. Here every candidate gets its exact similarity on every path it
has a vector for, each path is DBSF-normalised over the candidates and the weighted sum
ranks them. MMR then removes near-identical hits (the same slide exported twice, a page
point and its own text chunk) so the top-k shows distinct evidence.
"""

from __future__ import annotations

import numpy as np

from rag.rerank.scoring import dbsf_normalise, mmr_order, similarity
from rag.settings import RetrievalSettings
from rag.types import TEXT, Hit, SparseVector, Vector


class ExactReranker:
    needs_vectors = True

    def __init__(self, settings: RetrievalSettings) -> None:
        self.weights = settings.weights
        self.lam = settings.mmr_lambda
        self.duplicate_threshold = settings.duplicate_threshold

    def scores(self, query: list[tuple[str, Vector]], hits: list[Hit]) -> list[float]:
        total = np.zeros(len(hits), dtype=np.float64)
        for name, qvec in query:
            weight = self.weights.get(name, 1.0)
            if weight == 0:
                continue
            raw = [
                similarity(qvec, h.vectors[name]) if name in h.vectors else None for h in hits
            ]
            total += weight * np.asarray(dbsf_normalise(raw))
        return [float(x) for x in total]

    def _pairwise(self, hits: list[Hit]) -> np.ndarray:
        """Similarity between candidates on the text vector (clip where text is absent)."""
        n = len(hits)
        sim = np.zeros((n, n), dtype=np.float64)
        for i in range(n):
            for j in range(i + 1, n):
                a, b = hits[i].vectors, hits[j].vectors
                name = TEXT if TEXT in a and TEXT in b else next(
                    (k for k in a if k in b and not isinstance(a[k], SparseVector)), None
                )
                s = similarity(a[name], b[name]) if name else 0.0
                if hits[i].text.strip() and hits[i].text.strip() == hits[j].text.strip():
                    s = 1.0
                sim[i, j] = sim[j, i] = s
        return sim

    def rerank(self, query: list[tuple[str, Vector]], hits: list[Hit], limit: int) -> list[Hit]:
        if not hits:
            return []
        scores = self.scores(query, hits)
        order = mmr_order(scores, self._pairwise(hits), limit, self.lam, self.duplicate_threshold)
        out = []
        for i, gain in order:
            h = hits[i]
            h.score = gain
            out.append(h)
        return out


class NoReranker:
    """Keep the store's fused order."""

    needs_vectors = False

    def __init__(self, settings: RetrievalSettings) -> None:
        pass

    def rerank(self, query: list[tuple[str, Vector]], hits: list[Hit], limit: int) -> list[Hit]:
        return hits[:limit]
