"""Upload naming and metadata rules, as pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.uploads import MAX_NAME_CHARS, parse_metadata, sanitize_filename, source_names
from rag.errors import BadInput


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("/abs/path/x.md", "x.md"),
        (".env", "env"),
        ("..", ""),
        ("a\x00b\nc.txt", "a_b_c.txt"),
        ("Résumé 2024.md", "Résumé 2024.md"),
        ("semi;colon|pipe.txt", "semi_colon_pipe.txt"),
    ],
)
def test_sanitize_examples(raw: str, safe: str) -> None:
    assert sanitize_filename(raw) == safe


@given(st.text(max_size=400))
def test_sanitized_names_are_safe(raw: str) -> None:
    name = sanitize_filename(raw)
    assert "/" not in name and "\\" not in name
    assert not name.startswith(".")
    assert len(name) <= MAX_NAME_CHARS
    assert all(c.isprintable() for c in name)


def test_long_names_keep_their_extension() -> None:
    name = sanitize_filename("x" * 500 + ".md")
    assert name.endswith(".md") and len(name) == MAX_NAME_CHARS


@given(st.lists(st.text(max_size=30), max_size=12))
def test_source_names_are_unique_and_prefixed(raw: list[str]) -> None:
    names = source_names(raw)
    assert len(names) == len(raw) == len(set(names))
    assert all(n.startswith("upload/") and n != "upload/" for n in names)


def test_source_names_dedupe_keeps_extension() -> None:
    assert source_names(["a.md", "x/a.md", "a.md"]) == [
        "upload/a.md", "upload/a-2.md", "upload/a-3.md"
    ]


def test_metadata_rules() -> None:
    assert parse_metadata(None) == {} and parse_metadata("  ") == {}
    assert parse_metadata('{"team": "ops", "n": 2, "ok": true}') == {
        "team": "ops", "n": 2, "ok": True
    }
    for bad in ("[1]", "{", '{"a": null}', '{"a": {"b": 1}}'):
        with pytest.raises(BadInput):
            parse_metadata(bad)
