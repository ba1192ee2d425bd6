"""Pure scoring helpers for reranking: sparse dot products, score normalisation, MMR."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.types import SparseVector


def dbsf_array(raw: np.ndarray) -> np.ndarray:
    """Distribution-based score normalisation (as Qdrant's DBSF), one numpy pass: map
    mean ± 3σ to 0..1, clip outside; a missing score (NaN: a candidate without that
    vector) becomes 0."""
    out = np.zeros(raw.shape[0], dtype=np.float64)
    present = ~np.isnan(raw)
    if not present.any():
        return out
    values = raw[present]
    mean, std = float(values.mean()), float(values.std())
    lo, hi = mean - 3 * std, mean + 3 * std
    out[present] = 0.5 if hi - lo <= 1e-12 else np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    return out


def sparse_dots(query: SparseVector, vectors: Sequence[SparseVector]) -> np.ndarray:
    """The dot product of ``query`` with each of ``vectors``, in one numpy pass: every
    vector's entries are looked up among the query's (sorted) indices at once."""
    out = np.zeros(len(vectors), dtype=np.float64)
    if not vectors or not query.indices:
        return out
    q_idx = np.asarray(query.indices, dtype=np.int64)
    order = np.argsort(q_idx, kind="stable")
    q_idx, q_val = q_idx[order], np.asarray(query.values, dtype=np.float64)[order]
    lengths = [len(v.indices) for v in vectors]
    idx = np.fromiter((i for v in vectors for i in v.indices), dtype=np.int64,
                      count=sum(lengths))
    val = np.fromiter((x for v in vectors for x in v.values), dtype=np.float64,
                      count=sum(lengths))
    owner = np.repeat(np.arange(len(vectors)), lengths)
    pos = np.minimum(np.searchsorted(q_idx, idx), len(q_idx) - 1)
    hit = q_idx[pos] == idx
    return np.bincount(owner[hit], weights=val[hit] * q_val[pos[hit]], minlength=len(vectors))


def mmr_order(
    relevance: Sequence[float],
    sim: np.ndarray,
    limit: int,
    lam: float,
    duplicate_threshold: float,
) -> list[tuple[int, float]]:
    """Maximal marginal relevance: greedily pick the index maximising
    ``lam * relevance - (1 - lam) * max_similarity_to_picked``; candidates whose
    similarity to a picked one reaches ``duplicate_threshold`` are dropped as duplicates.
    ``sim`` is the candidates' pairwise similarity matrix. Returns (index, gain) pairs;
    the gains never increase (a candidate's gain only falls as more are picked), so they
    serve as scores that agree with the order."""
    n = len(relevance)
    rel = np.asarray(relevance, dtype=np.float64)
    picked: list[tuple[int, float]] = []
    alive = np.ones(n, dtype=bool)
    max_sim = np.zeros(n, dtype=np.float64)
    while len(picked) < limit and alive.any():
        gain = lam * rel - (1 - lam) * max_sim
        gain[~alive] = -np.inf
        best = int(np.argmax(gain))
        picked.append((best, float(gain[best])))
        alive[best] = False
        max_sim = np.maximum(max_sim, sim[best])
        alive &= sim[best] < duplicate_threshold
    return picked


def document_boost(
    relevance: Sequence[float], groups: Sequence[str], weight: float, top: int
) -> list[float]:
    """Each candidate's relevance plus its document's bonus: ``weight`` times the mean
    relevance of that document's ``top`` candidates after its best one (fewer when it has
    fewer; a document with one candidate gets none).

    Why: a chunk is scored alone, but the question is about a document. A page whose
    other chunks also match (the tool's NAME line, its option list, its examples) is
    likelier the right one than a page with one chunk that shares a few words. The mean
    of a few, not the sum of all, keeps long documents from winning by length. One bonus
    per document keeps the order inside a document; ``weight`` 0 changes nothing.
    """
    rel = [float(r) for r in relevance]
    if weight == 0 or top < 1 or not rel:
        return rel
    members: dict[str, list[float]] = {}
    for r, g in zip(rel, groups, strict=True):
        members.setdefault(g, []).append(r)
    bonus = {}
    for g, scores in members.items():
        rest = sorted(scores, reverse=True)[1 : top + 1]
        bonus[g] = weight * sum(rest) / len(rest) if rest else 0.0
    return [r + bonus[g] for r, g in zip(rel, groups, strict=True)]
