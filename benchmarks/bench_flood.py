"""Disk used by a server's data dir under an upload flood, printed as a table.

    .venv/bin/python benchmarks/bench_flood.py [--minutes 10] [--clients 4]
        [--spool-mb 64] [--file-mb 2] [--files 4] [--code DIR]

Starts the API (offline profile) in a subprocess with ``api.max_spool_bytes`` set to
``--spool-mb``, then ``--clients`` clients upload as fast as the server lets them for
``--minutes``: each request carries ``--files`` text files of ``--file-mb`` MiB (made
of random dictionary words, so they chunk and embed like real text, slowly: the queue
of jobs grows faster than it drains). A 429 is honoured by waiting its ``Retry-After``.
Every second the benchmark measures the bytes under ``<data>/jobs`` (spooled uploads
and job state) and under the whole data dir. With the spool bound the jobs folder stays
at or below the bound plus the uploads in flight; without it (``--code`` pointing at a
checkout from before the bound) it grows with the flood.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

from _server import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024

SERVER = """
import sys, uvicorn
from api.app import create_app
from rag.settings import ApiSettings, load_settings
port, data, spool, file_bytes = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
api = {"max_upload_bytes": file_bytes + 1024 * 1024}
if "max_spool_bytes" in ApiSettings.model_fields:
    api["max_spool_bytes"] = spool
settings = load_settings("offline", overrides={"data_dir": data, "api": api,
                                               "ingest": {"workers": 1}})
uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
"""

WORDS = [
    "pump", "valve", "torque", "gasket", "seal", "pressure", "flow", "bearing", "shaft",
    "impeller", "motor", "voltage", "current", "relay", "breaker", "fuse", "cable", "sensor",
    "probe", "alarm", "threshold", "schedule", "inspection", "maintenance", "replacement",
    "lubricant", "filter", "housing"
]


def tree_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def text_file(rng: random.Random, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        out += (" ".join(rng.choice(WORDS) for _ in range(12)) + ".\n").encode()
    return bytes(out[:size])


class Flood:
    def __init__(self, url: str, files: int, file_bytes: int, until: float) -> None:
        self.url, self.files, self.file_bytes, self.until = url, files, file_bytes, until
        self.statuses: dict[int, int] = {}
        self.lock = threading.Lock()

    def client(self, index: int) -> None:
        rng = random.Random(index)
        with httpx.Client(timeout=httpx.Timeout(600, connect=30)) as http:
            n = 0
            while time.monotonic() < self.until:
                n += 1
                parts = [("files", (f"c{index}-{n}-{i}.txt", text_file(rng, self.file_bytes)))
                         for i in range(self.files)]
                try:
                    r = http.post(f"{self.url}/v1/collections/flood/documents", files=parts)
                    status = r.status_code
                    wait = float(r.headers.get("retry-after", "0") or 0)
                except httpx.HTTPError:
                    status, wait = 0, 1.0
                with self.lock:
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                if status in (429, 503):
                    time.sleep(min(max(wait, 0.5), 30.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--spool-mb", type=int, default=64)
    ap.add_argument("--file-mb", type=float, default=2.0)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose code to run")
    args = ap.parse_args()
    file_bytes = int(args.file_mb * MB)
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="mmrag-bench-flood-"))
    env = dict(os.environ, PYTHONPATH=str(args.code.resolve()), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(data), str(args.spool_mb * MB),
         str(file_bytes)], env=env, cwd=args.code.resolve())
    url = f"http://127.0.0.1:{port}"
    samples: list[tuple[float, int, int]] = []
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        start = time.monotonic()
        flood = Flood(url, args.files, file_bytes, start + args.minutes * 60)
        threads = [threading.Thread(target=flood.client, args=(i,), daemon=True)
                   for i in range(args.clients)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            samples.append((time.monotonic() - start, tree_bytes(data / "jobs"),
                            tree_bytes(data)))
            time.sleep(1.0)
    finally:
        proc.terminate()  # a server finishes its running job first: do not wait for it
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(data, ignore_errors=True)
    peak_jobs = max(s[1] for s in samples)
    peak_all = max(s[2] for s in samples)
    end_jobs, end_all = samples[-1][1], samples[-1][2]
    codes = ", ".join(f"{k}: {v}" for k, v in sorted(flood.statuses.items()))
    print(f"\ncode: {args.code.resolve()}")
    print(f"{args.clients} clients x {args.files} files x {args.file_mb:g} MiB per request, "
          f"{args.minutes:g} min, api.max_spool_bytes {args.spool_mb} MiB")
    print("| responses | jobs/ peak MB | jobs/ at end MB | data dir peak MB | data dir at end MB |")
    print("|---|---|---|---|---|")
    print(f"| {codes} | {peak_jobs / MB:.0f} | {end_jobs / MB:.0f} | {peak_all / MB:.0f} | "
          f"{end_all / MB:.0f} |")
    for minute in range(1, int(args.minutes) + 1):
        near = min(samples, key=lambda s: abs(s[0] - minute * 60))
        print(f"  t={minute:>2} min: jobs/ {near[1] / MB:.0f} MB, data dir {near[2] / MB:.0f} MB")


if __name__ == "__main__":
    main()
