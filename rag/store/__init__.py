"""Vector stores, chosen by ``settings.store.backend`` from :data:`BACKENDS`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rag.errors import ConfigError
from rag.store.base import VectorStore

if TYPE_CHECKING:
    from rag.settings import Settings


def _edge(settings: Settings) -> VectorStore:
    from rag.store.edge import EdgeStore

    s = settings.store
    return EdgeStore(settings.data_path / "edge", s.quantization, s.oversampling, s.hnsw_ef,
                     s.cache_points)


def _qdrant(settings: Settings) -> VectorStore:
    from rag.store.qdrant import Cluster, QdrantStore

    s = settings.store
    cluster = Cluster(s.shard_number, s.replication_factor, s.write_consistency_factor,
                      s.read_consistency)
    return QdrantStore(url=s.url, path=s.path, api_key=s.api_key, prefer_grpc=s.prefer_grpc,
                       quantization=s.quantization, oversampling=s.oversampling,
                       hnsw_ef=s.hnsw_ef, cluster=cluster)


BACKENDS: dict[str, Callable[[Settings], VectorStore]] = {"edge": _edge, "qdrant": _qdrant}


def build_store(settings: Settings) -> VectorStore:
    try:
        factory = BACKENDS[settings.store.backend]
    except KeyError:
        raise ConfigError(
            f"unknown store backend {settings.store.backend!r}; choose one of {sorted(BACKENDS)}"
        ) from None
    return factory(settings)


__all__ = ["BACKENDS", "VectorStore", "build_store"]
