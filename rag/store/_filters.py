"""Filter translation shared by every store backend.

:func:`translate` turns our :class:`~rag.types.Filter` into a tiny, library-free
description (:class:`Conditions`): "this payload key must equal one of these values",
"this number must equal that". Each backend maps that description to its engine's
filter objects in a few lines, so the *meaning* of a filter (which payload key, which
match, what is refused) lives in one place and the backends cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rag.errors import BadInput
from rag.payload import DOC_ID, META, MODALITY, PATH_PREFIXES, RECORD, SOURCE, TENANT
from rag.types import MODALITIES, Filter

Scalar = str | int | bool


@dataclass(frozen=True)
class MatchAnyOf:
    """Payload ``key`` equals one of ``values`` (one value: an exact match).

    On an array payload (``path_prefixes``) the engines match if any element equals,
    which is what makes whole-component prefix matching a plain keyword lookup.
    """

    key: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class NumberEquals:
    """Payload ``key`` equals a float. Engines have no exact float match, so backends
    express this as the closed range ``[value, value]``."""

    key: str
    value: float


Condition = MatchAnyOf | NumberEquals


@dataclass(frozen=True)
class Conditions:
    """All of ``must`` and none of ``must_not``; never empty when returned by
    :func:`translate`."""

    must: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()


def translate(flt: Filter | None) -> Conditions | None:
    """The neutral form of ``flt``; ``None`` when it restricts nothing.

    Raises ``BadInput`` for values no backend can match (unknown modality, a prefix of
    only slashes, metadata values that are not scalars or lists of them).
    """
    if flt is None or flt.is_empty():
        return None
    must: list[Condition] = []
    must_not: list[Condition] = []
    if flt.modality:
        unknown = sorted(set(flt.modality) - {*MODALITIES, RECORD})
        if unknown:
            raise BadInput(
                f"unknown modality {', '.join(map(repr, unknown))} in filter; "
                f"choose from {', '.join(MODALITIES)}"
            )
        must.append(MatchAnyOf(MODALITY, tuple(dict.fromkeys(flt.modality))))
    if flt.source:
        must.append(MatchAnyOf(SOURCE, (flt.source,)))
    if flt.source_prefix:
        prefix = flt.source_prefix.rstrip("/")
        if not prefix:
            raise BadInput(
                f"source_prefix {flt.source_prefix!r} names no folder; give a path such "
                "as 'docs' or 'docs/2024'"
            )
        must.append(MatchAnyOf(PATH_PREFIXES, (prefix,)))
    if flt.doc_id:
        must.append(MatchAnyOf(DOC_ID, (flt.doc_id,)))
    if flt.doc_ids is not None:
        if not flt.doc_ids:
            raise BadInput("doc_ids: an empty list matches nothing; leave it out instead")
        must.append(MatchAnyOf(DOC_ID, tuple(dict.fromkeys(flt.doc_ids))))
    if flt.tenant:
        must.append(MatchAnyOf(TENANT, (flt.tenant,)))
    for key, value in flt.metadata.items():
        must.append(_metadata_condition(key, value))
    if flt.exclude_doc_id:
        must_not.append(MatchAnyOf(DOC_ID, (flt.exclude_doc_id,)))
    if flt.exclude_doc_ids:
        must_not.append(MatchAnyOf(DOC_ID, tuple(dict.fromkeys(flt.exclude_doc_ids))))
    if not must and not must_not:
        return None
    return Conditions(tuple(must), tuple(must_not))


def metadata_key(key: str) -> str:
    """The payload path of user metadata ``key``, quoted so keys with dots, spaces or
    dashes address one nested field (``meta."a.b"``) rather than a deeper path."""
    if not isinstance(key, str) or not key or '"' in key or "\\" in key or not key.isprintable():
        raise BadInput(
            f"metadata filter key {key!r} is not usable: use a non-empty printable name "
            "without quotes or backslashes"
        )
    return f'{META}."{key}"'


def _metadata_condition(key: str, value: Any) -> Condition:
    path = metadata_key(key)
    if isinstance(value, (list, tuple)):
        values = list(value)
        if len(values) == 1:
            return _metadata_condition(key, values[0])
        if values and all(isinstance(v, str) for v in values):
            return MatchAnyOf(path, tuple(values))
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return MatchAnyOf(path, tuple(values))
        raise BadInput(
            f"metadata filter {key!r}: a list means 'any of' and must hold only strings "
            f"or only integers, got {value!r}"
        )
    if isinstance(value, (str, bool, int)):
        return MatchAnyOf(path, (value,))
    if isinstance(value, float) and math.isfinite(value):
        return NumberEquals(path, value)
    raise BadInput(
        f"metadata filter {key!r}: cannot match {value!r}; use a string, number, "
        "true/false, or a list of strings or integers"
    )
