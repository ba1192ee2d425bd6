"""Replays issue 17's attacks on the jobs folder and the thumbnail cache; prints a table.

    PYTHONPATH=<checkout> .venv/bin/python benchmarks/jobs_attacks.py

Runs against whichever ``pipeline``/``rag`` is importable, so the same script gives the
before (``PYTHONPATH`` = a checkout of main before the fix) and after rows. Each scenario
plants files in a fresh ``<data_dir>/jobs/`` the way an attacker (or a bug, or a restore
from backup) could, then starts a pipeline the way ``mmrag serve`` does
(``Pipeline.resume_jobs``) and reports what it did outside the jobs folder.
Offline profile; nothing leaves the machine; everything lives in a temporary folder.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from pipeline import Pipeline
from rag.errors import MmragError
from rag.media import MediaStore
from rag.settings import load_settings

SECRET = "The vault combination is 8812, kept in the north office."


def settings(data: Path) -> Any:
    return load_settings("offline", overrides={"data_dir": data, "ingest": {"workers": 1}})


def start(data: Path) -> tuple[list[str], str | None]:
    """What a server start does with the jobs folder: resume, then let the jobs run."""
    with Pipeline(settings(data)) as pipe:
        try:
            resumed = pipe.resume_jobs()
        except Exception as exc:  # the server would not start
            return [], f"{type(exc).__name__}: {exc}"
        deadline = time.monotonic() + 300
        while any(pipe.job_is_live(j) for j in resumed) and time.monotonic() < deadline:
            time.sleep(0.1)
    return resumed, None


def sources(data: Path, collection: str = "c") -> list[str]:
    with Pipeline(settings(data)) as pipe:
        try:
            return [d["source"] for d in pipe.documents(collection)]
        except MmragError:
            return []


def job_json(job_id: str, **fields: Any) -> str:
    base = {"id": job_id, "collection": "c", "status": "queued", "files": [],
            "files_done": 0, "chunks": 0, "created": time.time(), "finished": None,
            "error": None, "metadata": {}, "attempts": 0, "base_dir": None}
    return json.dumps({**base, **fields})


def planted_path_job(root: Path) -> dict[str, Any]:
    """``jobs/evil.json`` whose id is an absolute path outside and whose base_dir points
    at a folder of real files: started twice (the folder put back in between)."""
    data, victim = root / "data", root / "outside" / "victim"
    (data / "jobs").mkdir(parents=True)

    def plant_victim() -> None:
        victim.mkdir(parents=True, exist_ok=True)
        (victim / "secret.txt").write_text(SECRET)

    plant_victim()
    (data / "jobs" / "evil.json").write_text(job_json(
        str(victim), base_dir=str(victim), files=[{"source": "secret.txt"}]))
    resumed, crash = start(data)
    removed_first = not victim.exists()
    plant_victim()
    again, _ = start(data)
    return {
        "resumed at start 1 / 2": f"{len(resumed)} / {len(again)}",
        "outside files ingested": len(sources(data)),
        "outside folder removed (start 1, start 2)": f"{removed_first}, {not victim.exists()}",
        "files written outside": sorted(p.name for p in (root / "outside").iterdir()
                                        if p.name != "victim"),
        "start failed": crash,
    }


def symlinked_spool(root: Path) -> dict[str, Any]:
    """A spooled-upload job whose spool file is a symlink to a file outside."""
    data, outside = root / "data", root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    job_id = uuid.uuid4().hex
    spool = data / "jobs" / job_id / "files"
    spool.mkdir(parents=True)
    (spool / "00000").symlink_to(outside / "secret.txt")
    (data / "jobs" / f"{job_id}.json").write_text(job_json(
        job_id, files=[{"source": "upload/leak.txt"}]))
    resumed, crash = start(data)
    return {"resumed": len(resumed), "outside files ingested": len(sources(data)),
            "outside file still there": (outside / "secret.txt").exists(),
            "start failed": crash}


def bad_types(root: Path) -> dict[str, Any]:
    """A job file with a string where a number belongs, beside a genuine queued job."""
    data = root / "data"
    spool = data / "jobs" / (good := uuid.uuid4().hex) / "files"
    spool.mkdir(parents=True)
    (spool / "00000").write_text("Herons nest near the pier in spring.")
    (data / "jobs" / f"{good}.json").write_text(job_json(
        good, files=[{"source": "upload/heron.txt"}]))
    bad = uuid.uuid4().hex
    (data / "jobs" / f"{bad}.json").write_text(job_json(bad, created="yesterday"))
    (data / "jobs" / "garbage.json").write_text("{not json")
    resumed, crash = start(data)
    return {"resumed": len(resumed), "genuine upload ingested": len(sources(data)) == 1,
            "start failed": crash}


def unfinished_path_job(root: Path) -> dict[str, Any]:
    """A path job (``mmrag ingest`` through a server) left running by a killed server."""
    data, docs = root / "data", root / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("Kestrels hover over the fields at dawn.")
    (data / "jobs").mkdir(parents=True)
    job_id = uuid.uuid4().hex
    (data / "jobs" / f"{job_id}.json").write_text(job_json(
        job_id, status="running", attempts=1, base_dir=str(docs),
        files=[{"source": "note.txt"}]))
    resumed, crash = start(data)
    state = json.loads((data / "jobs" / f"{job_id}.json").read_text())
    return {"resumed": len(resumed), "files read from base_dir": len(sources(data)),
            "job status after start": state["status"], "start failed": crash}


def old_finished_jobs(root: Path) -> dict[str, Any]:
    """50 jobs that finished 30 days ago: what a start leaves of them."""
    data = root / "data"
    (data / "jobs").mkdir(parents=True)
    month = time.time() - 30 * 86400
    for _ in range(50):
        job_id = uuid.uuid4().hex
        (data / "jobs" / f"{job_id}.json").write_text(job_json(
            job_id, status="done", created=month, finished=month,
            files=[{"source": "upload/a.txt", "status": "added"}]))
    start(data)
    return {"job files before / after start": f"50 / {len(list((data / 'jobs').glob('*.json')))}"}


def thumbnails(root: Path) -> dict[str, Any]:
    """Every ``size`` from 16 to 4096 asked of one stored 1600x1200 picture."""
    media = MediaStore(root / "media")
    key = media.put("ab" * 16 + "-p1", Image.new("RGB", (1600, 1200), "teal"))
    started = time.perf_counter()
    total = 0
    for size in range(16, 4097):
        total += len(media.read_bytes(key, size))
    files = list((root / "media").rglob("*.webp"))
    return {"files on disk for one picture": len(files),
            "bytes on disk": sum(p.stat().st_size for p in files),
            "seconds for 4,081 requests": round(time.perf_counter() - started, 1)}


SCENARIOS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "planted path job (id = absolute path)": planted_path_job,
    "spool file symlinked outside": symlinked_spool,
    "wrong types and garbage beside a genuine job": bad_types,
    "path job left unfinished by a killed server": unfinished_path_job,
    "finished jobs 30 days old (retention 7 days)": old_finished_jobs,
    "thumbnail sizes 16..4096": thumbnails,
}


def main() -> None:
    import pipeline

    print(f"code: {Path(pipeline.__file__).resolve().parent.parent}\n")
    print("| scenario | what happened |\n|---|---|")
    for name, scenario in SCENARIOS.items():
        with tempfile.TemporaryDirectory() as tmp:
            result = scenario(Path(tmp))
        shown = "; ".join(f"{k}: {v}" for k, v in result.items() if v is not None)
        print(f"| {name} | {shown} |", flush=True)


if __name__ == "__main__":
    main()
