"""What an ingest reports, per file and in total: plain data with no heavy imports, so
the CLI can show a server's job with the same types as its own runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

# ``repaired``: the stored document's record promised points the store did not have
# (removed behind mmrag's back, or by an interrupted delete of older versions); it was
# written again. ``rebuilt``: same bytes, written again because a part of the text
# pipeline that shaped it changed (or ``--rebuild``); ``reason`` says which.
FileStatus = Literal["pending", "added", "replaced", "repaired", "rebuilt", "unchanged",
                     "duplicate", "failed"]


@dataclass
class FileResult:
    source: str
    status: FileStatus = "pending"
    points: int = 0
    chunks: int = 0
    doc_id: str = ""
    error: str | None = None
    reason: str | None = None


@dataclass
class IngestReport:
    collection: str
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def points_written(self) -> int:
        return sum(f.points for f in self.files
                   if f.status in ("added", "replaced", "repaired", "rebuilt"))

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]

    def rebuilt_reasons(self) -> dict[str, int]:
        """Why documents were rebuilt: reason -> how many ('ocr changed': 12)."""
        reasons: dict[str, int] = {}
        for f in self.files:
            if f.status == "rebuilt" and f.reason:
                reasons[f.reason] = reasons.get(f.reason, 0) + 1
        return reasons

    def summary(self) -> str:
        parts = [
            f"{self.count(s)} {s}"
            for s in ("added", "replaced", "repaired", "rebuilt", "unchanged", "duplicate",
                      "failed")
            if self.count(s)
        ]
        reasons = self.rebuilt_reasons()
        if reasons:
            i = parts.index(f"{self.count('rebuilt')} rebuilt")
            parts[i] += " (" + ", ".join(f"{n} {why}" if len(reasons) > 1 else why
                                         for why, n in sorted(reasons.items())) + ")"
        return (
            f"{len(self.files)} files into {self.collection!r}: "
            + (", ".join(parts) or "nothing to do")
            + f"; {self.points_written} points written in {self.seconds:.1f}s"
        )


@dataclass
class Progress:
    """What a progress display needs after each step. Files may finish out of order
    (a pool prepares several at once): ``index`` is the position of ``result``."""

    files_done: int
    files_total: int
    chunks: int
    current: str
    result: FileResult | None = None
    index: int = -1


ProgressFn = Callable[[Progress], None]
