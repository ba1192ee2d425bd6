"""The CLI contract, run as a user runs it: the installed ``mmrag`` script in subprocesses.

Each command is a new process, so these also prove the embedded store survives a restart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

pytestmark = pytest.mark.integration

# Several `mmrag` subprocesses, each loading the models: the slow tier.
pytestmark = pytest.mark.slow

MMRAG = [sys.executable, "-m", "cli.main"]
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, data: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MMRAG_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([*MMRAG, *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    docs = tmp_path_factory.mktemp("cli") / "docs"
    docs.mkdir()
    (docs / "dns.md").write_text(
        "# DNS outage\n\nThe resolver cache expired and upstream name servers timed out, "
        "so service discovery failed for 40 minutes."
    )
    (docs / "coffee.txt").write_text("Espresso extraction takes 25 to 30 seconds at 9 bar.")
    img = Image.new("RGB", (900, 150), "white")
    path = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    font = ImageFont.truetype(str(path), 44) if path.exists() else ImageFont.load_default(44)
    ImageDraw.Draw(img).text((20, 40), "Backup window 02:00 UTC", fill="black", font=font)
    img.save(docs / "backup.png")
    return docs


def test_ingest_then_search_json_in_new_processes(corpus: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = run("ingest", str(corpus), "--collection", "kb", "--profile", "offline", data=data)
    assert "3 added" in out.stdout
    res = run("search", "why did name resolution break", "--collection", "kb", "--profile",
              "offline", "--json", "--limit", "3", data=data)
    hits = json.loads(res.stdout)["hits"]
    assert hits[0]["source"] == str(corpus / "dns.md")
    assert set(hits[0]) >= {"source", "page", "modality", "score", "text"}
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    # image query: the picture's own pixels find it
    res = run("search", "", "--image", str(corpus / "backup.png"), "--collection", "kb",
              "--profile", "offline", "--json", data=data)
    assert json.loads(res.stdout)["hits"][0]["source"] == str(corpus / "backup.png")
    # a second ingest writes nothing
    out = run("ingest", str(corpus), "--collection", "kb", "--profile", "offline", data=data)
    assert "3 unchanged" in out.stdout and "0 points written" in out.stdout

    cols = run("collections", "--json", "--profile", "offline", data=data)
    assert json.loads(cols.stdout)["collections"][0]["name"] == "kb"

    run("delete", str(corpus / "coffee.txt"), "--collection", "kb", "--profile", "offline",
        data=data)
    docs = json.loads(run("documents", "--collection", "kb", "--json", "--profile", "offline",
                          data=data).stdout)["documents"]
    assert {Path(d["source"]).name for d in docs} == {"dns.md", "backup.png"}


def test_eval_prints_recall_and_mrr_per_kind(corpus: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    run("ingest", str(corpus), "--collection", "kb", "--profile", "offline", data=data)
    queries = tmp_path / "q.jsonl"
    queries.write_text("\n".join(json.dumps(q) for q in [
        {"query": "espresso brewing time", "target": "coffee.txt", "kind": "paraphrase"},
        {"query": "service discovery failed how long", "target": "dns.md", "kind": "detail"},
        {"query": "", "image": str(corpus / "backup.png"), "target": "backup.png",
         "kind": "screenshot"},
    ]))
    out = run("eval", str(queries), "--collection", "kb", "--profile", "offline", data=data)
    lines = {line.split()[0]: line.split() for line in out.stdout.splitlines()}
    assert lines["kind"] == ["kind", "n", "R@1", "R@5", "MRR"]
    assert lines["overall"][1:] == ["3", "1.000", "1.000", "1.000"]
    assert {"paraphrase", "detail", "screenshot"} <= set(lines)


def test_bad_file_exits_1_and_names_it(corpus: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")
    proc = run("ingest", str(corpus / "dns.md"), str(bad), "--collection", "kb", "--profile",
               "offline", data=tmp_path / "data", check=False)
    assert proc.returncode == 1
    assert "broken.pdf" in proc.stderr and "1 added" in proc.stdout


def test_unknown_collection_and_profile_are_clear_errors(tmp_path: Path) -> None:
    proc = run("search", "x", "--collection", "nothing", "--profile", "offline",
               data=tmp_path, check=False)
    assert proc.returncode == 2 and "nothing" in proc.stderr
    proc = run("collections", "--profile", "nope", data=tmp_path, check=False)
    assert proc.returncode == 2 and "unknown profile" in proc.stderr
