"""The ``ray`` executor on one machine: the same report and the same stored documents as
the local executor, on a small corpus with every kind of outcome (added, a duplicate
within the run, a failed file, then unchanged and replaced). Multi-node runs, a lost
node and a killed driver are in test_ray_cluster.py (slow)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import Pipeline
from pipeline.report import IngestReport, Progress
from rag.errors import ConfigError
from rag.settings import Settings
from tests.conftest import EXAMPLES, tiny_clip

ray = pytest.importorskip("ray")  # installed by `make setup` (the ray extra)

pytestmark = pytest.mark.integration

PICKED = ["backup_restore_policy.txt", "git_branching_guide.md", "disk_full_terminal.png"]


@pytest.fixture(scope="module")
def one_node() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 1024 * 1024)
    yield
    ray.shutdown()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in PICKED:
        shutil.copy(EXAMPLES / "corpus" / name, folder / name)
    shutil.copy(folder / "backup_restore_policy.txt", folder / "copy_of_backup.txt")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\nnot really a pdf")
    return folder


def _settings(data: Path, executor: str) -> Settings:
    return tiny_clip(data, ingest={"executor": executor})


def _run(settings: Settings, corpus: Path, seen: list[Progress] | None = None
         ) -> tuple[IngestReport, list[dict[str, Any]]]:
    with Pipeline(settings) as pipe:
        report = pipe.ingest("docs", [str(corpus)], progress=seen.append if seen else None)
        return report, pipe.documents("docs")


def _outcome(report: IngestReport) -> list[tuple[str, str, int, int, str | None]]:
    return [(f.source, f.status, f.points, f.chunks, f.error) for f in report.files]


@pytest.mark.slow  # about a minute on 2 cores: Ray's start, actors loading the models
def test_ray_ingest_reports_and_stores_what_a_local_ingest_does(
    one_node: None, corpus: Path, tmp_path: Path
) -> None:
    local_report, local_docs = _run(_settings(tmp_path / "local", "local"), corpus)
    seen: list[Progress] = [Progress(0, 0, 0, "")]
    ray_settings = _settings(tmp_path / "ray", "ray")
    ray_report, ray_docs = _run(ray_settings, corpus, seen)

    assert _outcome(ray_report) == _outcome(local_report)
    statuses = {Path(f.source).name: f.status for f in ray_report.files}
    assert statuses["copy_of_backup.txt"] == "duplicate"
    assert statuses["broken.pdf"] == "failed"
    assert ray_docs == local_docs and len(ray_docs) == len(PICKED)
    # Media written by the cluster's tasks land in the store the API serves from.
    assert sorted(p.name for p in (tmp_path / "ray" / "media").iterdir()) == sorted(
        p.name for p in (tmp_path / "local" / "media").iterdir())
    # A progress bar on the driver: every file reported once with its result.
    done = [p for p in seen if p.result is not None]
    assert sorted(p.index for p in done) == list(range(len(ray_report.files)))
    assert done[-1].files_done == len(ray_report.files)

    # Idempotent: a second run writes nothing; a changed file replaces its old version.
    again, _ = _run(ray_settings, corpus)
    assert {f.status for f in again.files} == {"unchanged", "duplicate", "failed"}
    (corpus / "git_branching_guide.md").write_text("# Branching\n\nRebase onto main daily.\n")
    changed, docs = _run(ray_settings, corpus)
    assert {Path(f.source).name: f.status for f in changed.files}[
        "git_branching_guide.md"] == "replaced"
    assert len(docs) == len(PICKED)


def test_without_ray_installed_the_ray_executor_says_how_to_get_it(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with Pipeline(_settings(tmp_path / "data", "ray")) as pipe, pytest.raises(
            ConfigError, match=r"pip install 'mmrag\[ray\]'"):
        pipe.ingest("docs", [str(corpus)])
