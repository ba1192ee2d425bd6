"""Prometheus metrics, one registry per app.

A per-app :class:`~prometheus_client.CollectorRegistry` instead of the global one: the
global registry refuses a second metric of the same name, which would make a second app
in the same process (tests, an embedding application) crash at start-up.

Requests are labelled by the *route template* (``/v1/collections/{name}``), never the raw
path, so a client cannot blow up the number of time series by requesting random URLs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from pipeline import Pipeline

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_QUEUE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mmrag_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mmrag_http_request_duration_seconds",
            "Time to the end of the response (streams included), by route template",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.ingest_files = Counter(
            "mmrag_ingest_files",
            "Files processed by upload jobs, by outcome",
            ["status"],
            registry=self.registry,
        )
        self.jobs_running = Gauge(
            "mmrag_ingest_jobs_running", "Upload jobs running now", registry=self.registry
        )
        self.batch_size = Histogram(
            "mmrag_batch_size",
            "Items per call of a batched query stage (text, clip_text, clip_image, ocr, "
            "store, complete)",
            ["stage"],
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "mmrag_queue_seconds",
            "Time a query waited at a batched stage before its call started",
            ["stage"],
            buckets=_QUEUE_BUCKETS,
            registry=self.registry,
        )

    def watch(self, pipeline: Pipeline) -> None:
        """Export the pipeline's queues: depths and shed queries read at each scrape,
        batch sizes and queueing times as each batched call runs."""
        pipeline.on_batch(self._batched)
        self.registry.register(_QueueCollector(pipeline))

    def _batched(self, stage: str, size: int, waits: Sequence[float]) -> None:
        self.batch_size.labels(stage).observe(size)
        hist = self.queue_seconds.labels(stage)
        for w in waits:
            hist.observe(w)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def ingest_file(self, status: str) -> None:
        self.ingest_files.labels(status).inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _QueueCollector:
    """Queue depths read from the pipeline at scrape time (they change per request)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "mmrag_queue_depth",
            "Queries being served (stage=admitted, bounded by api.max_queue) and items "
            "waiting at each batched query stage",
            labels=["stage"],
        )
        for stage, n in self.pipeline.queue_depths().items():
            depth.add_metric([stage], n)
        yield depth
        yield CounterMetricFamily(
            "mmrag_queries_shed",
            "Queries refused (HTTP 429, MCP tool errors) because api.max_queue were served",
            value=self.pipeline.shed_queries,
        )


class MetricsMiddleware:
    """Plain ASGI (not ``BaseHTTPMiddleware``, which buffers and breaks streaming)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets if the app raises before responding

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(
                scope.get("method", ""), template, status, time.perf_counter() - start
            )
