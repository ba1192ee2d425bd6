"""The ``ray`` executor on a multi-node Ray cluster on this machine
(``ray.cluster_utils.Cluster``: a head that runs nothing and two worker nodes): the example
corpus ingested there is stored exactly as a local ingest stores it, and so it is after a
worker node is removed mid-ingest (Ray runs the lost work again) and after the driver is
killed with ``kill -9`` and run again (the record protocol removes and rewrites what it
left half done)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import Pipeline
from pipeline.report import Progress
from tests.conftest import EXAMPLES, ROOT, offline

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = pytest.mark.slow

CORPUS = EXAMPLES / "corpus"
MB = 1024 * 1024
NODE = {"num_cpus": 2, "object_store_memory": 150 * MB}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "object_store_memory": 150 * MB, "include_dashboard": False})
    for _ in range(2):
        c.add_node(**NODE)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The example corpus as the local executor stores it."""
    with Pipeline(offline(tmp_path_factory.mktemp("local"))) as pipe:
        report = pipe.ingest("ex", [str(CORPUS)])
        assert not report.failed, [f.error for f in report.failed]
        return pipe.documents("ex")


def documents(data: Path) -> list[dict[str, Any]]:
    with Pipeline(offline(data)) as pipe:
        return pipe.documents("ex")


def test_a_cluster_ingest_stores_what_a_local_one_does(
    cluster: Cluster, reference: list[dict[str, Any]], tmp_path: Path
) -> None:
    with Pipeline(offline(tmp_path / "ray", ingest={"executor": "ray"})) as pipe:
        report = pipe.ingest("ex", [str(CORPUS)])
        assert not report.failed, [f.error for f in report.failed]
        assert pipe.documents("ex") == reference
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")}
    assert len(nodes) == 2


def test_a_node_lost_mid_ingest_ends_in_the_clean_result(
    cluster: Cluster, reference: list[dict[str, Any]], tmp_path: Path
) -> None:
    spare = cluster.add_node(**NODE)  # three workers; one goes mid-ingest
    cluster.wait_for_nodes()
    started = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.result is not None and p.files_done >= 3:
            started.set()

    result: dict[str, Any] = {}

    def run() -> None:
        with Pipeline(offline(tmp_path / "ray", ingest={"executor": "ray"})) as pipe:
            result["report"] = pipe.ingest("ex", [str(CORPUS)], progress=on_progress)

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(600), "the ingest never got going"
    victim = random.choice([n for n in cluster.worker_nodes])
    cluster.remove_node(victim)  # its tasks, actors and blocks are lost
    if victim is not spare:
        cluster.add_node(**NODE)  # keep two workers for the next test
    thread.join(900)
    assert not thread.is_alive()
    report = result["report"]
    assert not report.failed, [f.error for f in report.failed]
    assert documents(tmp_path / "ray") == reference


def test_a_killed_driver_leaves_what_the_next_run_repairs(
    cluster: Cluster, reference: list[dict[str, Any]], tmp_path: Path
) -> None:
    data = tmp_path / "ray"
    command = [sys.executable, "-m", "cli.main", "ingest", str(CORPUS), "--collection", "ex",
               "--profile", "offline", "--data-dir", str(data), "--local",
               "--executor", "ray", "--ray-address", cluster.address]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    media = data / "media"
    deadline = time.monotonic() + 600
    while len(list(media.rglob("*.webp")) if media.exists() else []) < 4:
        assert driver.poll() is None, "the driver ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(random.uniform(0, 3))
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    left = documents(data) if (data / "edge").exists() else []
    assert all(row in reference for row in left), "only whole documents are visible"
    assert len(left) < len(reference), "killed before the end (else nothing was tested)"

    again = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    assert documents(data) == reference
