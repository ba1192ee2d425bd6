"""The ``exact`` reranker: re-score every fused candidate on all its vectors, then MMR.

Fusion inside the store sees each path's top-k only; a candidate found by one path has no
score from the others. Here every candidate gets its exact similarity on every path it
has a vector for, each path is DBSF-normalised over the candidates and the weighted sum
ranks them. Each candidate then gains a share of its document's other evidence
(:func:`~rag.rerank.scoring.document_boost`), so the document that matches best as a
whole comes first. MMR then removes near-identical hits (the same slide exported twice, a page
point and its own text chunk) so the top-k shows distinct evidence.
"""

from __future__ import annotations

import functools
from typing import cast

import numpy as np

from rag.rerank.scoring import dbsf_array, document_boost, mmr_order, sparse_dots
from rag.settings import RetrievalSettings
from rag.types import CLIP, TEXT, Hit, SparseVector, Vector


@functools.cache
def single_thread_blas() -> None:
    """Run numpy's BLAS on one thread in this process, once.

    Reranking multiplies matrices of ~50 x 384; OpenBLAS spreads even those over every
    core, and while the text encoder (or a concurrent request) holds the cores the thread
    hand-off costs 5-20 ms a search, more than the arithmetic. mmrag has no large numpy
    products (torch does the heavy work with its own threads), so one thread is faster
    everywhere. Set per process, not per call: a scoped limit would race between
    concurrent requests.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class ExactReranker:
    needs_vectors = True

    def __init__(self, settings: RetrievalSettings) -> None:
        single_thread_blas()
        self.weights = settings.weights
        self.lam = settings.mmr_lambda
        self.duplicate_threshold = settings.duplicate_threshold
        self.doc_weight = settings.doc_weight
        self.doc_top = settings.doc_top

    def scores(self, query: list[tuple[str, Vector]], hits: list[Hit],
               rows: _Rows | None = None) -> list[float]:
        rows = rows if rows is not None else _Rows(hits)
        total = np.zeros(len(hits), dtype=np.float64)
        for name, qvec in query:
            weight = self.weights.get(name, 1.0)
            if weight == 0:
                continue
            raw = np.full(len(hits), np.nan)  # NaN: the candidate lacks this vector
            if isinstance(qvec, SparseVector):
                idx = [i for i, h in enumerate(hits)
                       if isinstance(h.vectors.get(name), SparseVector)]
                found = sparse_dots(qvec, [cast(SparseVector, hits[i].vectors[name])
                                           for i in idx])
            else:
                idx, mat = rows[name]
                q = np.asarray(qvec, dtype=np.float32)
                q = q / max(float(np.linalg.norm(q)), 1e-12)
                found = mat @ q if len(idx) else np.zeros(0)
            raw[idx] = found
            total += weight * dbsf_array(raw)
        return [float(x) for x in total]

    def _pairwise(self, hits: list[Hit], rows: _Rows) -> np.ndarray:
        """Similarity between candidates on the text vector, on clip for pairs where one
        lacks text; identical texts count as identical whatever their vectors."""
        n = len(hits)
        sim = np.zeros((n, n), dtype=np.float64)
        done = np.zeros((n, n), dtype=bool)
        for name in (TEXT, CLIP):
            idx, mat = rows[name]
            if len(idx) < 2:
                continue
            block = np.ix_(idx, idx)
            sim[block] = np.where(done[block], sim[block], mat @ mat.T)
            done[block] = True
        groups: dict[str, list[int]] = {}
        for i, h in enumerate(hits):
            if h.text.strip():
                groups.setdefault(h.text.strip(), []).append(i)
        for members in groups.values():
            if len(members) > 1:
                sim[np.ix_(members, members)] = 1.0
        return sim

    def rerank(self, query: list[tuple[str, Vector]], hits: list[Hit], limit: int) -> list[Hit]:
        if not hits:
            return []
        rows = _Rows(hits)
        scores = self.scores(query, hits, rows)
        scores = document_boost(scores, [h.doc_id or h.source for h in hits], self.doc_weight,
                                self.doc_top)
        order = mmr_order(scores, self._pairwise(hits, rows), limit, self.lam,
                          self.duplicate_threshold)
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


class _Rows(dict[str, tuple[list[int], np.ndarray]]):
    """Each dense path's unit rows, built once per rerank (scoring and MMR both use them)."""

    def __init__(self, hits: list[Hit]) -> None:
        super().__init__()
        self.hits = hits

    def __missing__(self, name: str) -> tuple[list[int], np.ndarray]:
        self[name] = rows = _unit_rows(self.hits, name)
        return rows


def _unit_rows(hits: list[Hit], name: str) -> tuple[list[int], np.ndarray]:
    """Indices of the hits with a dense ``name`` vector and those vectors, unit-normalised."""
    idx = [i for i, h in enumerate(hits)
           if name in h.vectors and not isinstance(h.vectors[name], SparseVector)]
    if not idx:
        return [], np.zeros((0, 0), dtype=np.float32)
    mat = np.asarray([hits[i].vectors[name] for i in idx], dtype=np.float32)
    mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
    return idx, mat
