"""Content hashes, point ids and path prefixes: pure functions, property-tested."""

from __future__ import annotations

import hashlib
import uuid

from hypothesis import given
from hypothesis import strategies as st

from ingest.hashing import POINT_NAMESPACE, VISUAL_CHUNK, path_prefixes, point_id, sha256_bytes

doc_ids = st.text(alphabet="0123456789abcdef", min_size=1, max_size=64)
pages = st.integers(min_value=0, max_value=100_000)
chunks = st.integers(min_value=-1, max_value=10_000)
components = st.text(
    alphabet=st.characters(exclude_characters="/", exclude_categories=["Cs"]),
    min_size=1,
    max_size=12,
)


def test_sha256_bytes_is_hex_sha256() -> None:
    assert sha256_bytes(b"") == hashlib.sha256(b"").hexdigest()
    assert sha256_bytes(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_point_id_is_pinned() -> None:
    # Changing the namespace or the name format would orphan every stored point.
    assert point_id("ab", 1, 0) == str(uuid.uuid5(POINT_NAMESPACE, "ab/1/0"))
    assert point_id("ab", 1, VISUAL_CHUNK) == str(uuid.uuid5(POINT_NAMESPACE, "ab/1/-1"))


@given(doc_ids, pages, chunks)
def test_point_id_is_a_deterministic_uuid5(doc_id: str, page: int, chunk: int) -> None:
    first = point_id(doc_id, page, chunk)
    assert first == point_id(doc_id, page, chunk)
    parsed = uuid.UUID(first)
    assert parsed.version == 5
    assert str(parsed) == first


@given(st.tuples(doc_ids, pages, chunks), st.tuples(doc_ids, pages, chunks))
def test_point_ids_differ_for_different_inputs(
    a: tuple[str, int, int], b: tuple[str, int, int]
) -> None:
    if a != b:
        assert point_id(*a) != point_id(*b)


def test_visual_point_never_collides_with_text_chunks() -> None:
    ids = {point_id("d", 1, c) for c in range(-1, 50)}
    assert len(ids) == 51


def test_path_prefixes_examples() -> None:
    assert path_prefixes("a/b/c.pdf") == ["a", "a/b", "a/b/c.pdf"]
    assert path_prefixes("/x/y.png") == ["/x", "/x/y.png"]
    assert path_prefixes("report.pdf") == ["report.pdf"]
    assert path_prefixes("docs//a/") == ["docs", "docs/a"]
    assert path_prefixes("") == []
    assert path_prefixes("/") == []


@given(st.booleans(), st.lists(components, min_size=1, max_size=8))
def test_path_prefixes_properties(absolute: bool, parts: list[str]) -> None:
    source = ("/" if absolute else "") + "/".join(parts)
    prefixes = path_prefixes(source)
    assert len(prefixes) == len(parts)
    assert prefixes[-1] == source
    for shorter, longer in zip(prefixes, prefixes[1:], strict=False):
        # Each prefix ends on a component boundary of the next one.
        assert longer.startswith(shorter + "/")
    assert all(p.startswith("/") == absolute for p in prefixes)
    assert path_prefixes(prefixes[-1]) == prefixes


@given(st.lists(components, min_size=1, max_size=5), components)
def test_prefix_of_a_sibling_is_not_a_prefix(parts: list[str], extra: str) -> None:
    # "docs/a" must not match "docs/ab.pdf": the classic string-prefix bug.
    source = "/".join(parts[:-1] + [parts[-1] + extra])
    assert "/".join(parts) not in path_prefixes(source)
