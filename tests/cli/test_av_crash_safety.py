"""``kill -9`` in the middle of ingesting videos and recordings, then a rerun: exactly a
clean run's documents and points (and their times), as for every other file."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.av_media import ESPEAK, ESPEAK_MISSING, Shot, make_audio, make_video, slide, speech
from tests.cli.test_crash_safety import ENV, mmrag, snapshot

pytestmark = [pytest.mark.slow, pytest.mark.skipif(ESPEAK is None, reason=ESPEAK_MISSING)]

TRIALS = int(os.environ.get("MMRAG_KILL_TRIALS", "3"))


def make_corpus(root: Path) -> Path:
    media = root / "media"
    media.mkdir()
    for v in range(2):
        said = np.concatenate([speech(f"Part {v}. The pump valve {i} needs torque setting "
                                      f"{i * 7 + 10} newton metres.") for i in range(4)])
        titles = ["Pump overview", "Valve torque", "Gasket types", "Safety checks",
                  "Maintenance log", "Questions"]
        shots = [Shot(slide([f"{titles[i]} ({v})", f"valve {i} torque {i * 7 + 10} Nm"],
                            background=("white", "#ffe9c0")[i % 2]),
                      len(said) / 16000 / 6) for i in range(6)]
        (media / f"talk{v}.mp4").write_bytes(make_video(shots, audio=said))
    (media / "memo.mp3").write_bytes(make_audio(speech(
        "Memo. The heron nested near pier four during week twenty."), fmt="mp3"))
    (media / "note.txt").write_text("The heron nested near pier four.")
    return media


def timed(data: Path) -> list[tuple[str, float | None, float | None]]:
    hits = mmrag("search", "valve torque", "--collection", "c", "--json", "--limit", "20",
                 data=data)
    assert hits.returncode == 0, hits.stderr
    return sorted((h["source"], h["start"], h["end"]) for h in json.loads(hits.stdout)["hits"])


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]], int,
                                                             float, Any]:
    root = tmp_path_factory.mktemp("avkill")
    media = make_corpus(root)
    started = time.monotonic()
    run = mmrag("ingest", str(media), "--collection", "c", "--json", data=root / "clean")
    seconds = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    documents, total = snapshot(root / "clean")
    assert len(documents) == 4 and total > 10
    return media, documents, total, seconds, timed(root / "clean")


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_9_mid_video_then_rerun_equals_a_clean_run(trial: int, clean: Any,
                                                        tmp_path: Path) -> None:
    media, expected, total, seconds, times = clean
    delay = random.Random(2000 + trial).uniform(0.2, 0.9) * seconds
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "ingest", str(media), "--collection", "c",
         "--profile", "offline", "--data-dir", str(data)],
        env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    again = mmrag("ingest", str(media), "--collection", "c", "--json", data=data)
    assert again.returncode == 0, again.stderr
    documents, count = snapshot(data)
    assert documents == expected, f"killed after {delay:.1f}s"
    assert count == total
    assert timed(data) == times
