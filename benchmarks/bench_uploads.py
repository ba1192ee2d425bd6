"""Server memory under concurrent large uploads, printed as a table.

    .venv/bin/python benchmarks/bench_uploads.py [--uploads 3] [--size-mb 1024]
                                                  [--code DIR] [--data-dir DIR]

Starts the API (offline profile) in a subprocess on a loopback port, so its RSS is the
server's alone, with ``api.max_upload_bytes`` raised above the upload size and
``api.max_inflight_upload_bytes`` above their sum. Then sends ``--uploads`` uploads of
``--size-mb`` MiB each at once, every body generated on the fly (the client holds one
chunk), and samples the server's RSS every 50 ms; its peak during the uploads
(``VmHWM``, reset after start-up where the kernel allows) is the number that matters.
``--code DIR`` runs another checkout's code (e.g. main before streaming uploads) for a
before/after table. Not part of the tests: it writes ``uploads x size`` to disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from _server import status_kb  # benchmarks/ is the script's folder

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
CHUNK = 1 * MB

SERVER = """
import sys, uvicorn
from api.app import create_app
from rag.settings import ApiSettings, load_settings
size, port, data = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
api = {"max_upload_bytes": size + 1024 * 1024}
if "max_inflight_upload_bytes" in ApiSettings.model_fields:
    api["max_inflight_upload_bytes"] = 8 * size
settings = load_settings("offline", overrides={"data_dir": data, "api": api})
uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def body(index: int, size: int, boundary: str) -> tuple[int, object]:
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"big-{index}.txt\"\r\nContent-Type: text/plain\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    line = (b"The quick brown fox jumps over the lazy dog, line after line. " * 16)[:1023]
    chunk = (line + b"\n") * (CHUNK // 1024)

    def gen() -> object:
        yield head
        sent = 0
        while sent < size:
            piece = chunk[: min(CHUNK, size - sent)]
            sent += len(piece)
            yield piece
        yield tail

    return len(head) + size + len(tail), gen()


def upload(url: str, index: int, size: int, out: dict[int, tuple[int, float]]) -> None:
    boundary = f"bench{index}"
    length, content = body(index, size, boundary)
    start = time.perf_counter()
    with httpx.Client(timeout=httpx.Timeout(1800, connect=30)) as client:
        r = client.post(f"{url}/v1/collections/bench/documents", content=content,  # type: ignore[arg-type]
                        headers={"content-type": f"multipart/form-data; boundary={boundary}",
                                 "content-length": str(length)})
    out[index] = (r.status_code, time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--uploads", type=int, default=3)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose code to run")
    ap.add_argument("--data-dir", type=Path, default=None)
    args = ap.parse_args()
    size = args.size_mb * MB
    port = free_port()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="mmrag-bench-uploads-"))
    env = dict(os.environ, PYTHONPATH=str(args.code.resolve()), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(size), str(port), str(data)],
                            env=env, cwd=args.code.resolve())
    url = f"http://127.0.0.1:{port}"
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
        idle = status_kb(proc.pid, "VmRSS")
        try:  # "5" resets the peak RSS (VmHWM) to the current RSS
            Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
            hwm_reset = True
        except OSError:
            hwm_reset = False
        peak = idle
        results: dict[int, tuple[int, float]] = {}
        threads = [threading.Thread(target=upload, args=(url, i, size, results))
                   for i in range(args.uploads)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, status_kb(proc.pid, "VmRSS"))
            time.sleep(0.05)
        wall = time.perf_counter() - start
        hwm = status_kb(proc.pid, "VmHWM") if hwm_reset else peak
    finally:
        proc.terminate()
        proc.wait(60)
        if args.data_dir is None:
            shutil.rmtree(data, ignore_errors=True)
    statuses = ",".join(str(results.get(i, (0, 0))[0]) for i in range(args.uploads))
    print(f"\ncode: {args.code.resolve()}")
    print("| uploads | size each | statuses | wall s | MB/s total | RSS idle MB | "
          "peak RSS MB (sampled) | peak RSS MB (VmHWM) | growth MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    top = max(peak, hwm)
    print(f"| {args.uploads} | {args.size_mb} MiB | {statuses} | {wall:.1f} | "
          f"{args.uploads * size / MB / wall:.0f} | {idle / 1024:.0f} | {peak / 1024:.0f} | "
          f"{hwm / 1024:.0f}{'' if hwm_reset else ' (not reset)'} | {(top - idle) / 1024:.0f} |")


if __name__ == "__main__":
    main()
