"""``mmrag mcp`` as a real subprocess, driven by the SDK's own stdio client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.api.conftest import Corpus, text_png
from tests.mcpserver.client import images, run, stdio_params, texts, tool_map

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def session_log(tmp_path_factory: pytest.TempPathFactory, corpus: Corpus) -> dict[str, Any]:
    """One server process for the whole scenario (it loads models once)."""
    data = tmp_path_factory.mktemp("mcp-stdio")
    query = tmp_path_factory.mktemp("q") / "query.png"
    query.write_bytes(text_png(["Parcel 4471 ships", "from Rotterdam harbour"]))
    out: dict[str, Any] = {"corpus": corpus}

    async def go() -> None:
        async with Client(stdio_params(data)) as client:
            out["tools"] = tool_map(await client.list_tools())
            out["ingest"] = await client.call_tool(
                "ingest", {"collection": "kb", "paths": [str(corpus.root)],
                           "metadata": {"team": "ops"}})
            out["missing_path"] = await client.call_tool(
                "ingest", {"collection": "kb", "paths": ["/no/such/file.pdf"]})
            out["search"] = await client.call_tool(
                "search", {"collection": "kb", "query": "hydraulic press seals"})
            out["image_search"] = await client.call_tool(
                "search", {"collection": "kb", "image": str(query), "limit": 3})
            out["filtered"] = await client.call_tool(
                "search", {"collection": "kb", "query": "parcel",
                           "filter": {"metadata": {"team": "nobody"}}})
            out["ask"] = await client.call_tool(
                "ask", {"collection": "kb", "question": "Where does parcel 4471 ship from?",
                        "history": [{"role": "user", "content": "hi"},
                                    {"role": "assistant", "content": "hello"}]})
            out["bad_image"] = await client.call_tool(
                "search", {"collection": "kb", "image": "/no/such/image.png"})
            out["unknown"] = await client.call_tool("ask", {"collection": "nope",
                                                            "question": "x"})
            out["documents"] = await client.call_tool("documents", {"collection": "kb"})
            out["delete"] = await client.call_tool(
                "delete", {"collection": "kb", "source": str(corpus.root / "coffee.txt")})
            out["after"] = await client.call_tool("documents", {"collection": "kb"})

    run(go)
    return out


def test_tools_and_schemas_over_stdio(session_log: dict[str, Any]) -> None:
    tools = session_log["tools"]
    assert set(tools) == {"search", "ask", "collections", "documents", "ingest", "delete"}
    ingest = tools["ingest"].input_schema
    assert ingest["required"] == ["collection", "paths"]
    assert "files" not in ingest["properties"]


def test_ingest_paths_and_report(session_log: dict[str, Any]) -> None:
    result = session_log["ingest"]
    assert not result.is_error, texts(result)
    assert "4 files into 'kb': 4 added" in texts(result)
    missing = session_log["missing_path"]
    assert missing.is_error
    assert "/no/such/file.pdf" in texts(missing)


def test_search_text_and_image(session_log: dict[str, Any]) -> None:
    text = texts(session_log["search"])
    assert "press.pdf, page 1" in text.splitlines()[2]
    assert "piston seals" in text
    image_hits = session_log["image_search"].structured_content["hits"]
    assert image_hits[0]["source"].endswith("invoice.png")
    assert images(session_log["image_search"])
    assert session_log["filtered"].structured_content["hits"] == []


def test_ask_over_stdio(session_log: dict[str, Any]) -> None:
    result = session_log["ask"]
    assert not result.is_error, texts(result)
    assert "Rotterdam" in texts(result) and "Sources:" in texts(result)
    assert images(result)


def test_errors_are_tool_errors(session_log: dict[str, Any]) -> None:
    assert session_log["bad_image"].is_error
    assert "cannot read /no/such/image.png" in texts(session_log["bad_image"])
    assert session_log["unknown"].is_error
    assert "collection 'nope' does not exist" in texts(session_log["unknown"])


def test_delete_over_stdio(session_log: dict[str, Any]) -> None:
    before = {d["source"] for d in session_log["documents"].structured_content["documents"]}
    after = {d["source"] for d in session_log["after"].structured_content["documents"]}
    coffee = str(Path(session_log["corpus"].root) / "coffee.txt")
    assert not session_log["delete"].is_error
    assert before - after == {coffee}


def test_missing_model_fails_with_exit_code_3(tmp_path: Path) -> None:
    """A model that is not there ends ``mmrag mcp`` with its message, not a hang."""
    import subprocess

    params = stdio_params(tmp_path / "data")
    env = {**(params.env or {}), "MMRAG_TEXT__MODEL": "no-such-org/no-such-model"}
    proc = subprocess.run([params.command, *params.args], env=env, cwd=params.cwd,
                          input="", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr
    assert "no-such-org/no-such-model" in proc.stderr
    assert proc.stdout == ""
