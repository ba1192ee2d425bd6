"""Schemathesis against a real server, stateful phase on; prints responses by status class.

    .venv/bin/python benchmarks/fuzz_api.py [--max-examples 30] [--seed 20261206]
        [--phases examples,coverage,fuzzing,stateful] [--code DIR]

Starts ``mmrag``'s API (offline profile, no keys: the loopback default) in a subprocess
on a fresh data dir with two small documents in collection ``kb``, then runs the
``schemathesis run`` CLI over the OpenAPI document with the given phases. The stateful
phase follows the API's links (create a collection by uploading, read its documents and
jobs, search it, delete from it, drop it) with generated data. Every response is read back
from schemathesis's HAR report and counted by status: the number that matters is 5xx
(server errors), which must be 0. ``--code`` runs the server from another checkout.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

SERVER = """
import sys, uvicorn
from api.app import create_app
from rag.settings import load_settings
port, data = int(sys.argv[1]), sys.argv[2]
settings = load_settings("offline", overrides={"data_dir": data, "ingest": {"workers": 0}})
uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
"""

DOCS = {
    "tls.md": b"# TLS\n\nRotate the certificate with `certctl rotate --days 90`.",
    "coffee.txt": b"The coffee machine on floor 3 is descaled every Friday.",
}


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the server did not become ready in 300 s")


def seed_collection(url: str) -> None:
    files = [("files", (name, data)) for name, data in DOCS.items()]
    job = httpx.post(f"{url}/v1/collections/kb/documents", files=files, timeout=120).json()
    for _ in range(600):
        state = httpx.get(f"{url}/v1/jobs/{job['id']}", timeout=30).json()
        if state["status"] in ("done", "failed", "cancelled"):
            return
        time.sleep(0.2)


def statuses(har: Path) -> collections.Counter[int]:
    counts: collections.Counter[int] = collections.Counter()
    for entry in json.loads(har.read_text())["log"]["entries"]:
        counts[int(entry["response"]["status"])] += 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-examples", type=int, default=30)
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose server to run")
    args = ap.parse_args()

    st = Path(sys.executable).parent / "schemathesis"
    with tempfile.TemporaryDirectory(prefix="mmrag-fuzz-") as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(args.code.resolve()), "HF_HUB_OFFLINE": "1"}
        proc = subprocess.Popen([sys.executable, "-c", SERVER, str(port), f"{tmp}/data"],
                                env=env, cwd=args.code)
        try:
            wait_ready(url, proc)
            seed_collection(url)
            started = time.monotonic()
            run = subprocess.run(
                [str(st), "run", f"{url}/openapi.json", "--phases", args.phases,
                 "--max-examples", str(args.max_examples), "--seed", str(args.seed),
                 "--checks", "not_a_server_error", "--report", "har",
                 "--report-dir", f"{tmp}/report", "--request-timeout", "120",
                 "--no-color"],
                capture_output=True, text=True)
            seconds = time.monotonic() - started
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        hars = sorted(Path(tmp, "report").glob("har*"))
        if not hars:
            print(run.stdout[-3000:], run.stderr[-3000:])
            raise SystemExit("schemathesis wrote no HAR report")
        counts = statuses(hars[0])
        if any(code >= 500 for code in counts):
            print(run.stdout[-6000:])
    by_class = collections.Counter(f"{code // 100}xx" for code in counts.elements())
    print(f"code: {args.code}; phases {args.phases}; max examples {args.max_examples}; "
          f"seed {args.seed}; {seconds:.0f} s; schemathesis exit {run.returncode}")
    print("| requests | 2xx | 4xx | 5xx | statuses |")
    print("|---|---|---|---|---|")
    detail = ", ".join(f"{code}: {n}" for code, n in sorted(counts.items()))
    print(f"| {sum(counts.values())} | {by_class['2xx']} | {by_class['4xx']} | "
          f"{by_class['5xx']} | {detail} |")
    lines = run.stdout.splitlines()
    for i, line in enumerate(lines):  # the phases and the case count, as schemathesis says
        if line.strip() in ("Test Phases:", "Test cases:"):
            for shown in lines[i: i + 6]:
                if shown.strip():
                    print("  " + shown.strip())


if __name__ == "__main__":
    main()
