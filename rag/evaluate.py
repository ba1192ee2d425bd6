"""Retrieval evaluation: R@1, R@5 and MRR of the target file over distinct sources.

A query line is ``{"query": ..., "image": optional path, "target": file name, "kind": ...}``;
image paths are relative to the queries file. Hits are collapsed to distinct sources in
ranked order (several chunks of one file count once) and the target matches a source by
file name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from rag.errors import BadInput


@dataclass
class EvalQuery:
    query: str
    target: str
    image: Path | None = None
    kind: str = "all"


@dataclass
class Metrics:
    n: int = 0
    r1: float = 0.0
    r5: float = 0.0
    mrr: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "R@1": self.r1, "R@5": self.r5, "MRR": self.mrr}


@dataclass
class EvalResult:
    overall: Metrics
    by_kind: dict[str, Metrics] = field(default_factory=dict)
    misses: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_json(),
            "by_kind": {k: m.to_json() for k, m in sorted(self.by_kind.items())},
            "misses": self.misses,
        }

    def table(self) -> str:
        rows = [("overall", self.overall)] + sorted(self.by_kind.items())
        lines = [f"{'kind':<14}{'n':>5}{'R@1':>8}{'R@5':>8}{'MRR':>8}"]
        lines += [f"{k:<14}{m.n:>5}{m.r1:>8.3f}{m.r5:>8.3f}{m.mrr:>8.3f}" for k, m in rows]
        return "\n".join(lines)


def read_queries(path: Path) -> list[EvalQuery]:
    out = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            image = row.get("image")
            out.append(
                EvalQuery(
                    query=str(row.get("query") or ""),
                    target=str(row["target"]),
                    image=(Path(path).parent / image) if image else None,
                    kind=str(row.get("kind") or "all"),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise BadInput(f"{path}:{lineno}: not a query line ({exc}); expected "
                           '{"query": ..., "target": file name, "image": optional}') from exc
    return out


def rank_of(target: str, sources: Sequence[str]) -> int | None:
    """1-based rank of the target file among distinct sources, matching by file name."""
    seen: list[str] = []
    for s in sources:
        if s not in seen:
            seen.append(s)
    for i, s in enumerate(seen, 1):
        if PurePath(s).name == target or s == target:
            return i
    return None


def _aggregate(ranks: list[int | None]) -> Metrics:
    n = len(ranks)
    if n == 0:
        return Metrics()
    return Metrics(
        n=n,
        r1=sum(1 for r in ranks if r == 1) / n,
        r5=sum(1 for r in ranks if r is not None and r <= 5) / n,
        mrr=sum(1.0 / r for r in ranks if r is not None) / n,
    )


def evaluate(queries: list[EvalQuery], search: Callable[[EvalQuery], list[str]]) -> EvalResult:
    """``search`` returns the ranked sources of one query."""
    ranks: list[int | None] = []
    kinds: dict[str, list[int | None]] = {}
    misses = []
    for q in queries:
        sources = search(q)
        r = rank_of(q.target, sources)
        ranks.append(r)
        kinds.setdefault(q.kind, []).append(r)
        if r != 1:
            misses.append({"query": q.query, "image": str(q.image) if q.image else None,
                           "target": q.target, "rank": r, "top": sources[:3], "kind": q.kind})
    by_kind = {k: _aggregate(v) for k, v in kinds.items()} if set(kinds) != {"all"} else {}
    return EvalResult(_aggregate(ranks), by_kind, misses)
