"""Content hashes, point ids and source path prefixes.

Everything here is pure and deterministic: the same bytes always give the same
``doc_id`` and the same point ids, which is what makes re-ingesting a file a no-op and
lets changed bytes replace the old points of a source.
"""

from __future__ import annotations

import hashlib
import uuid

from rag.payload import POINT_NAMESPACE  # noqa: F401 (the payload schema owns it)
from rag.types import path_prefixes  # noqa: F401 (re-exported: ids and prefixes live together)

# Chunk number of the one visual point (picture or rendered page) of a page; text chunks
# of the same page are numbered 0..n-1, so the two can never collide.
VISUAL_CHUNK = -1


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``: the ``doc_id`` of a file, independent of its name."""
    return hashlib.sha256(data).hexdigest()


def point_id(doc_id: str, page: int, chunk: int) -> str:
    """UUIDv5 of ``doc_id/page/chunk``.

    Qdrant accepts only unsigned ints or UUIDs as ids; a name-based UUID keeps ids
    stable across runs and machines, so upserts of unchanged content overwrite in place.
    """
    return str(uuid.uuid5(POINT_NAMESPACE, f"{doc_id}/{int(page)}/{int(chunk)}"))
