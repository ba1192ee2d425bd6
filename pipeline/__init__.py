"""The composition root: :class:`Pipeline` wires the stages for ingest and queries and
owns their lifetimes and the ingest jobs. Surfaces (``cli/``, ``api/``, MCP, the chat
page) import this package and the core types, nothing below it.

Names are imported lazily: ``import pipeline.report`` (what the CLI needs to show a
server's job) must not pay for torch and the models that :mod:`pipeline.core` brings.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.core import Pipeline
    from pipeline.jobs import FINAL, Job
    from pipeline.report import FileResult, IngestReport, Progress

_WHERE = {
    "Pipeline": "pipeline.core",
    "FINAL": "pipeline.jobs",
    "Job": "pipeline.jobs",
    "FileResult": "pipeline.report",
    "IngestReport": "pipeline.report",
    "Progress": "pipeline.report",
}

__all__ = ["FINAL", "FileResult", "IngestReport", "Job", "Pipeline", "Progress"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
