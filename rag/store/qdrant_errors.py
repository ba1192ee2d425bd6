"""qdrant-client's exceptions as ours, for the ``qdrant`` store backend.

qdrant-client raises different classes for the same failure depending on the transport
(REST ``UnexpectedResponse``, gRPC ``RpcError``, local mode ``ValueError`` and
``RuntimeError``). :func:`engine_errors` maps all of them to :mod:`rag.errors` types
whose messages name the action ("read", "create", "write to") and the collection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from rag.errors import BadInput, ConfigError, Conflict, MmragError, UpstreamError
from rag.store._common import not_found


@contextmanager
def engine_errors(
    url: str | None,
    path: str | None,
    collection: str | None,
    action: str,
    forget: Callable[[str, Any], Any] | None = None,
) -> Iterator[None]:
    """Run one engine call with its exceptions turned into ours; ``forget(collection,
    None)`` drops a cached spec when the engine says the collection is gone."""
    target = f" collection {collection!r}" if collection else ""

    def gone() -> MmragError:
        assert collection is not None
        if forget is not None:
            forget(collection, None)
        return not_found(collection)

    try:
        yield
    except MmragError:
        raise
    except UnexpectedResponse as exc:
        detail = exc.content.decode("utf-8", "replace")[:500] if exc.content else ""
        if exc.status_code == 404 and collection:
            raise gone() from exc
        if exc.status_code in (400, 422):
            raise BadInput(f"Qdrant refused to {action}{target}: {detail}") from exc
        if exc.status_code == 409:
            raise Conflict(f"Qdrant could not {action}{target}: {detail}") from exc
        if exc.status_code in (401, 403):
            raise ConfigError(
                f"Qdrant at {url} refused the request ({exc.status_code}); check "
                "store.api_key"
            ) from exc
        raise UpstreamError(
            f"Qdrant at {url} failed to {action}{target}: {exc.status_code} {detail}"
        ) from exc
    except ResponseHandlingException as exc:
        raise UpstreamError(
            f"cannot reach Qdrant at {url} ({exc.source}); is the server running?"
        ) from exc
    except RuntimeError as exc:
        if "already accessed" in str(exc):
            raise Conflict(
                f"the local Qdrant store at {path} is open in another process; "
                "stop it, or use a Qdrant server for shared access"
            ) from exc
        raise MmragError(f"qdrant store could not {action}{target}: {exc}") from exc
    except ValueError as exc:  # local mode reports misuse and missing collections so
        if collection and "not found" in str(exc):
            raise gone() from exc
        raise BadInput(f"qdrant store could not {action}{target}: {exc}") from exc
    except Exception as exc:
        if _is_grpc_error(exc):
            raise _from_grpc(exc, collection, action, url) from exc
        raise MmragError(f"qdrant store could not {action}{target}: {exc}") from exc


def _is_grpc_error(exc: BaseException) -> bool:
    try:
        import grpc
    except ImportError:  # grpcio is a qdrant-client dependency, but be safe
        return False
    return isinstance(exc, grpc.RpcError)


def _from_grpc(exc: Any, collection: str | None, action: str, url: str | None) -> MmragError:
    import grpc

    code = exc.code() if hasattr(exc, "code") else None
    detail = exc.details() if hasattr(exc, "details") else str(exc)
    target = f" collection {collection!r}" if collection else ""
    if code == grpc.StatusCode.NOT_FOUND and collection:
        return not_found(collection)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return BadInput(f"Qdrant refused to {action}{target}: {detail}")
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return Conflict(f"Qdrant could not {action}{target}: {detail}")
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return ConfigError(f"Qdrant at {url} refused the request; check store.api_key")
    return UpstreamError(f"Qdrant at {url} failed to {action}{target}: {code} {detail}")
