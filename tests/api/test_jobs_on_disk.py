"""A real server over a jobs folder with planted files: it starts, ingests nothing the
files name, removes nothing outside, and forgets finished jobs after the retention."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.api.conftest import api_settings, serve, wait_job

pytestmark = pytest.mark.slow


def test_planted_jobs_are_ignored_and_finished_jobs_pruned(tmp_path: Path) -> None:
    victim = tmp_path / "outside" / "victim"
    victim.mkdir(parents=True)
    (victim / "secret.txt").write_text("The vault combination is 8812.")
    jobs = tmp_path / "data" / "jobs"
    jobs.mkdir(parents=True)
    planted = {"id": str(victim), "collection": "loot", "status": "queued",
               "base_dir": str(victim), "files": [{"source": "secret.txt"}],
               "created": time.time()}
    (jobs / "evil.json").write_text(json.dumps(planted))
    (jobs / f"{uuid.uuid4().hex}.json").write_text(json.dumps(planted))

    with serve(api_settings(tmp_path / "data", job_retention=0.5)) as srv, \
            srv.client() as http:
        collections = [c["name"] for c in http.get("/v1/collections").json()["data"]]
        assert "loot" not in collections
        assert (victim / "secret.txt").exists()
        assert http.get("/v1/jobs/evil").status_code == 404

        srv.pipeline._jobs.prune_every_s = 0  # a retention pass after every job
        first = http.post("/v1/collections/kept/documents",
                          files=[("files", ("a.txt", b"Anchors hold boats."))]).json()
        assert wait_job(http, first["id"])["status"] == "done"
        assert http.get(f"/v1/jobs/{first['id']}").status_code == 200
        time.sleep(0.6)
        second = http.post("/v1/collections/kept/documents",
                           files=[("files", ("b.txt", b"Sails catch wind."))]).json()
        assert wait_job(http, second["id"])["status"] == "done"
        gone = http.get(f"/v1/jobs/{first['id']}")
        assert gone.status_code == 404 and "does not exist" in gone.json()["error"]["message"]
        assert not list(jobs.glob(f"{first['id']}*"))
    assert (victim / "secret.txt").exists() and (jobs / "evil.json").exists()
