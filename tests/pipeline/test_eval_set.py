"""A slice of the man-page eval set (eval/make_eval_set.py) built from this machine's
manual pages, ingested with the offline profile, searched through the Pipeline.

Slow (OCR of two screenshots, a dozen documents) and it needs ``man``: it skips, saying
so, on a machine without the pages. The full set and its numbers: README, "Evaluation".
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from pipeline import Pipeline
from rag.evaluate import EvalQuery, evaluate
from tests.conftest import ROOT, offline

pytestmark = [pytest.mark.slow, pytest.mark.integration]

EVAL = ROOT / "eval"
# Compressors and file-wiping tools: confusers for each other, every text form, two
# screenshots.
SLICE = [
    "gzip.txt", "xz.pdf", "zstd.md", "tar.md", "zforce.txt", "zipinfo.pdf",
    "screenshot-001.png", "screenshot-016.png", "truncate.pdf", "dd.txt", "ln.md", "mv.pdf",
]


def _maker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_eval_set", EVAL / "make_eval_set.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pipeline, Path]]:
    maker = _maker()
    sources = [s for s in maker.read_sources() if s.file in SLICE]
    assert len(sources) == len(SLICE)
    root = tmp_path_factory.mktemp("evalslice")
    try:
        maker.build(root / "corpus", sources)
        maker.build_query_images(root / "queries")
    except maker.MissingManPage as exc:
        pytest.skip(f"eval slice needs the man pages: {exc}")
    pipe = Pipeline(offline(root / "data"))
    report = pipe.ingest("slice", [str(root / "corpus")])
    assert not report.failed, [f.error for f in report.failed]
    yield pipe, root
    pipe.close()


def _queries(root: Path) -> list[EvalQuery]:
    out = []
    for line in (EVAL / "queries.dev.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["target"] in SLICE:
            image = root / row["image"] if row.get("image") else None
            out.append(EvalQuery(row["query"], row["target"], image, row["kind"]))
    return out


def test_slice_ranks_the_right_document_first(built: tuple[Pipeline, Path]) -> None:
    pipe, root = built
    queries = _queries(root)
    assert {q.kind for q in queries} >= {"detail", "screenshot", "image"}

    def search(q: EvalQuery) -> list[str]:
        image = Image.open(q.image).convert("RGB") if q.image else None
        return [h.source for h in pipe.search("slice", q.query, image, 20)]

    result = evaluate(queries, search)
    print("\n" + result.table())
    assert result.overall.r5 == 1.0, result.misses
    assert result.overall.r1 >= 0.8, result.misses
