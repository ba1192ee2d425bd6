"""The qdrant backend's error mapping: each failure names what was being done."""

from __future__ import annotations

import httpx
import pytest
from qdrant_client.http.exceptions import UnexpectedResponse

from rag.errors import BadInput, NotFound, UpstreamError
from rag.store.qdrant import QdrantStore
from rag.store.qdrant_errors import engine_errors
from rag.types import CollectionSpec

SPEC = CollectionSpec(dense={"text": 4})


def _unexpected(status: int, body: bytes = b"boom") -> UnexpectedResponse:
    return UnexpectedResponse(status, "reason", body, httpx.Headers())


def test_a_failed_read_during_ensure_is_reported_as_a_read() -> None:
    store = QdrantStore(url=":memory:")
    store.ensure("c", SPEC)
    client = store._get_client()

    def broken(*_: object, **__: object) -> None:
        raise _unexpected(500)

    client.get_collection = broken  # type: ignore[method-assign]
    with pytest.raises(UpstreamError) as err:
        store.ensure("c", SPEC)
    assert "failed to read collection 'c'" in str(err.value)
    assert "create" not in str(err.value)
    store.close()


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [(404, NotFound, "does not exist"), (400, BadInput, "refused to write to"),
     (503, UpstreamError, "failed to write to")],
)
def test_rest_statuses_map_to_our_errors(status: int, kind: type, words: str) -> None:
    forgotten: list[str] = []
    with pytest.raises(kind) as err, engine_errors(
        "http://q:6333", None, "c", "write to", forget=lambda c, _: forgotten.append(c)
    ):
        raise _unexpected(status)
    assert words in str(err.value)
    assert forgotten == (["c"] if status == 404 else [])
