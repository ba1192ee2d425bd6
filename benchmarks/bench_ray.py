"""The ray executor against the local one, and files/s as simulated nodes are added.

    .venv/bin/python benchmarks/bench_ray.py [--copies 3] [--nodes 1,2,3]

1. the example corpus copied ``--copies`` times (distinct bytes), offline profile, in the
   same run: the local executor (its worker pool, one process per core) and the ray
   executor on a private one-machine Ray with as many logical CPUs as the local executor
   has processes (workers + the embedding main process): the difference is the engine's
   overhead (scheduling, serialising chunks and points, actor start and model load);
2. a simulated cluster (``ray.cluster_utils.Cluster``: a head that runs nothing and
   ``k`` worker nodes of 2 logical CPUs) for each ``k`` in ``--nodes``: files/s. All the
   nodes share this machine's cores, so this shows what adding nodes costs the engine,
   not the speed-up of real machines;
3. per-page costs from the local run (CPU seconds per page, points per page), the inputs
   of the sizing in the README.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")

from benchmarks.bench_pipeline import copy_corpus  # noqa: E402
from pipeline import Pipeline  # noqa: E402
from rag.settings import load_settings  # noqa: E402

MB = 1024 * 1024


def ingest(data: Path, corpus: Path, models: Path, executor: str) -> tuple[float, Any, int]:
    settings = load_settings("offline", overrides={
        "data_dir": data, "ingest": {"executor": executor},
        "text": {"export_dir": str(models)}})
    with Pipeline(settings) as pipe:
        start = time.perf_counter()
        report = pipe.ingest("bench", [str(corpus)])
        seconds = time.perf_counter() - start
        assert not report.failed, [f.error for f in report.failed]
        pages = sum(d["pages"] for d in pipe.documents("bench"))
    return seconds, report, pages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--nodes", default="1,2,3", help="simulated cluster sizes ('' for none)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="local and ray runs, alternating which goes first (noise check)")
    args = ap.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    cores = os.cpu_count() or 1
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        corpus = tmpd / "corpus"
        copy_corpus(ROOT / "examples" / "corpus", corpus, args.copies)
        files = sum(1 for _ in corpus.iterdir())
        models = tmpd / "models"
        # Warm: the ONNX export and OS caches, so neither side pays them.
        ingest(tmpd / "warm", ROOT / "examples" / "corpus", models, "local")

        ray.init(num_cpus=cores + 1, include_dashboard=False, log_to_driver=False,
                 object_store_memory=300 * MB)
        for r in range(args.rounds):
            timed: dict[str, float] = {}
            for executor in (("ray", "local") if r % 2 else ("local", "ray")):
                seconds, report, pages = ingest(tmpd / f"{executor}{r}", corpus, models,
                                                executor)
                timed[executor] = seconds
            local_s, ray_s = timed["local"], timed["ray"]
            rows.append((f"round {r + 1}: local executor ({cores} workers), {files} files, "
                         f"{pages} pages", f"{local_s:.1f} s, {files / local_s:.2f} files/s"))
            rows.append((f"round {r + 1}: ray executor, one machine ({cores + 1} logical "
                         "CPUs)", f"{ray_s:.1f} s, {files / ray_s:.2f} files/s "
                         f"({ray_s / local_s:.2f}x local)"))
        ray.shutdown()
        for k in [int(n) for n in args.nodes.split(",") if n]:
            cluster = Cluster(initialize_head=True, head_node_args={
                "num_cpus": 0, "object_store_memory": 150 * MB, "include_dashboard": False})
            for _ in range(k):
                cluster.add_node(num_cpus=2, object_store_memory=150 * MB)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, log_to_driver=False)
            seconds, _, _ = ingest(tmpd / f"nodes{k}", corpus, models, "ray")
            ray.shutdown()
            cluster.shutdown()
            rows.append((f"simulated cluster, {k} node(s) x 2 logical CPUs",
                         f"{seconds:.1f} s, {files / seconds:.2f} files/s"))
        points = report.points_written
        rows.append(("per page (local run)",
                     f"{local_s * cores / pages:.2f} CPU-s, {points / pages:.2f} points"))
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
