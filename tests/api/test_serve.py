"""``mmrag serve`` refuses to expose a keyless server; ``mmrag ask`` prints cited answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from cli.serve import check_bind
from rag.errors import ConfigError
from rag.settings import ApiSettings
from tests.api.conftest import TLS_MD


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_keyless_server_refuses_public_hosts(host: str) -> None:
    with pytest.raises(ConfigError, match="without API keys"):
        check_bind(host, ApiSettings())


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_keyless_server_on_loopback_says_so(host: str) -> None:
    notice = check_bind(host, ApiSettings())
    assert notice and "loopback" in notice and "api_keys" in notice


def test_keys_allow_any_host() -> None:
    assert check_bind("0.0.0.0", ApiSettings(api_keys={"k": ["*"]})) is None


def test_serve_command_refuses_before_loading_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["serve", "--host", "0.0.0.0", "--profile", "offline",
                 "--data-dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "refusing to serve on '0.0.0.0' without API keys" in err
    assert "MMRAG_API__API_KEYS" in err
    assert not (tmp_path / "edge").exists()


def test_ask_prints_answer_and_numbered_citations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "tls.md"
    doc.write_text(TLS_MD)
    common = ["--collection", "c", "--profile", "offline", "--data-dir", str(tmp_path / "d")]
    assert main(["ingest", str(doc), *common]) == 0
    capsys.readouterr()
    assert main(["ask", "How do I rotate TLS certificates?", *common]) == 0
    out = capsys.readouterr().out
    assert "certctl rotate" in out
    assert "Sources:" in out and f"[1] {doc}, page 1" in out
    assert main(["ask", "How do I rotate TLS certificates?", "--json", *common]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["citations"][0]["source"] == str(doc)
