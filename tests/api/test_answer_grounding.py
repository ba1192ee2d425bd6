"""Answers cite the document search ranks first, asked through the official ``openai``
SDK against a real server holding part of the example corpus (text, Markdown, text-layer
PDFs, screenshots). Both the extractive generator and the ``openai`` generator (behind
the fake VLM, replying with a citation of a lower-ranked source only) are checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.api.conftest import api_settings, serve
from tests.conftest import EXAMPLES
from tests.rag.generate.fake_vlm import FakeVLM

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COLLECTION = "examples"
FILES = [
    "api_rate_limits.pdf", "backup_restore_policy.txt", "git_branching_guide.md",
    "k8s_hpa_autoscaling.pdf", "k8s_liveness_probe_runbook.md", "nginx_gateway_rate_limiting.md",
    "oauth_device_flow.md", "pg_vacuum_tuning.md", "python_packaging_guide.pdf",
    "redis_eviction_notes.txt", "smtp_relay_settings.webp", "sshd_hardening_terminal.png",
]


def questions() -> list[str]:
    rows = [json.loads(line) for line in (EXAMPLES / "queries.jsonl").read_text().splitlines()
            if line.strip()]
    return [r["query"] for r in rows
            if r["target"] in FILES and r["query"] and not r.get("image")]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("grounding")


def top_and_cited(url: str, question: str) -> tuple[str, list[str]]:
    with httpx.Client(base_url=url, timeout=120) as http:
        search = http.post("/v1/search", json={"collection": COLLECTION, "query": question})
    assert search.status_code == 200, search.text
    top = search.json()["hits"][0]["source"]
    client = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    completion = client.chat.completions.create(
        model=COLLECTION, messages=[{"role": "user", "content": question}]
    )
    extra: dict[str, Any] = completion.model_extra or {}
    return top, [c["source"] for c in extra.get("citations") or []]


@pytest.fixture(scope="module")
def ingested(data_dir: Path) -> Path:
    """The collection, written by one server that then stops (one process per store)."""
    with serve(api_settings(data_dir)) as srv:
        corpus = EXAMPLES / "corpus"
        srv.ingest(COLLECTION, {name: (corpus / name).read_bytes() for name in FILES})
    return data_dir


def test_extractive_answers_cite_the_top_search_hit(ingested: Path) -> None:
    asked = questions()
    assert len(asked) >= 15
    misses = []
    with serve(api_settings(ingested)) as srv:
        for question in asked:
            top, cited = top_and_cited(srv.url, question)
            if not cited or cited[0] != top:
                misses.append((question, top, cited))
    assert not misses, misses


def test_openai_generator_answers_cite_the_top_search_hit(ingested: Path) -> None:
    # A model that cites only source [2]: the top hit is still cited, and first.
    with FakeVLM(reply="The setting is described in the second source [2].") as fake:
        settings = api_settings(ingested)
        settings.generator.backend = "openai"
        settings.generator.openai.base_url = fake.base_url
        settings.generator.openai.model = "fake-vlm"
        misses = []
        with serve(settings) as srv:
            for question in questions()[:8]:
                top, cited = top_and_cited(srv.url, question)
                if len(cited) < 2 or cited[0] != top:
                    misses.append((question, top, cited))
                text = fake.last["messages"][-1]["content"][0]["text"]
                assert text.endswith(f"Question: {question}")
        assert not misses, misses
