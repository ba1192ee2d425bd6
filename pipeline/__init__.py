"""The composition root: :class:`Pipeline` wires the stages for ingest and queries and
owns their lifetimes and the ingest jobs. Surfaces (``cli/``, ``api/``, MCP, the chat
page) import this package and the core types, nothing below it.
"""

from pipeline.core import Pipeline
from pipeline.jobs import FINAL, Job
from pipeline.runner import FileResult, IngestReport, Progress

__all__ = ["FINAL", "FileResult", "IngestReport", "Job", "Pipeline", "Progress"]
