"""What a job's state costs on disk as its files finish: the old whole-JSON rewrite per
file against the header + per-file log of :mod:`pipeline.jobstore`; prints a table.

    .venv/bin/python benchmarks/bench_jobs.py [--files 20000] [--old-files 2000]

Both write the same state (a job of ``--files`` files, each result the size of a typical
one) into a temporary folder on the data dir's file system (``--dir``). The new way runs
the real :class:`~pipeline.jobstore.JobStore` (header when queued and running, a log line
per file, compaction at the end). The old way (until issue 17: ``JobStore.save`` after
every file, an atomic rewrite of the whole JSON) is simulated inline: run for real at
``--old-files``, and at ``--files`` its bytes are summed exactly while its seconds are
sampled (every ``files/40``-th rewrite timed and integrated), since doing it for real
writes tens of GB. Bytes are what ``write()`` was handed (``/proc/self/io`` wchar on
Linux; the old way's simulation also sums its sizes). "read half done" is one read of
the job from disk when half its files are done (header + log replay vs one JSON); a
server answers for its live jobs from memory and reads them from disk only after a
restart or once they are finished (then one compacted JSON, as before).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

from pipeline.jobstate import Job, complete, new_id, start
from pipeline.jobstore import JobStore
from pipeline.report import FileResult

MB = 1e6


def wchar() -> int | None:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def result(i: int) -> FileResult:
    return FileResult(f"reports/2026/q{i % 4 + 1}/report-{i:06d}.pdf", "added", 37, 31,
                      f"{i:064x}")


def fresh(n: int) -> Job:
    return Job(id=new_id(), collection="work",
               files=[FileResult(f.source) for f in map(result, range(n))])


def old_save(root: Path, job: Job) -> int:
    """What ``JobStore.save`` did after every file before: the whole job, atomically."""
    data = json.dumps(job.to_json())
    path = root / f"{job.id}.json"
    tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
    tmp.write_text(data)
    tmp.replace(path)
    return len(data)


def old_real(root: Path, n: int) -> tuple[float, float, float]:
    """bytes, seconds, read seconds (half done) of the old way, run for real."""
    job = fresh(n)
    w0, t0, total, read_s = wchar(), time.perf_counter(), 0, 0.0
    start(job)
    total += old_save(root, job)
    for i in range(n):
        job.files[i] = result(i)
        job.files_done += 1
        total += old_save(root, job)
        if i == n // 2:
            r0 = time.perf_counter()
            json.loads((root / f"{job.id}.json").read_text())
            read_s = time.perf_counter() - r0
    complete(job, list(job.files))
    total += old_save(root, job)
    seconds = time.perf_counter() - t0
    w1 = wchar()
    return (w1 - w0 if w0 is not None and w1 is not None else total), seconds, read_s


def old_estimate(root: Path, n: int, samples: int = 40) -> tuple[float, float]:
    """Exact bytes and sampled seconds of the old way at ``n`` files."""
    job = fresh(n)
    start(job)
    pending = [len(json.dumps(asdict(f))) for f in job.files]
    done = [len(json.dumps(asdict(result(i)))) for i in range(n)]
    size = len(json.dumps(job.to_json()))
    total = size
    for i in range(n):  # each rewrite: the JSON with files 0..i done
        size += done[i] - pending[i]
        total += size
    total += size
    step = max(1, n // samples)
    seconds = 0.0
    for i in range(0, n, step):
        for j in range(i, min(i + step, n)):
            job.files[j] = result(j)
        t0 = time.perf_counter()
        old_save(root, job)
        seconds += (time.perf_counter() - t0) * min(step, n - i)
    return total, seconds


def new_real(root: Path, n: int) -> tuple[float, float, float]:
    store = JobStore(root)
    job = fresh(n)
    w0, t0 = wchar(), time.perf_counter()
    store.save(job)  # queued (submit)
    start(job)
    store.save(job)  # running
    log = store.open_log(job)
    read_s = 0.0
    for i in range(n):
        job.files[i] = result(i)
        job.files_done += 1
        log.append(i, job.files[i], job.files_done, job.files_done * 31)
        if i == n // 2:
            r0 = time.perf_counter()
            assert store.get(job.id).files_done == i + 1
            read_s = time.perf_counter() - r0
    log.close()
    complete(job, list(job.files))
    store.finish(job)
    seconds = time.perf_counter() - t0
    w1 = wchar()
    if w0 is None or w1 is None:
        raise SystemExit("needs Linux /proc/self/io to count the bytes written")
    return w1 - w0, seconds, read_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--old-files", type=int, default=2_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (a tmp dir)")
    args = parser.parse_args()
    rows: list[tuple[str, float, float, float | None, str]] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        for n in sorted({args.old_files, args.files}):
            (root / f"new{n}").mkdir()
            (root / f"old{n}").mkdir()
            b, s, r = new_real(root / f"new{n}", n)
            rows.append((f"header + log (now), {n:,} files", b, s, r, "measured"))
            if n <= args.old_files:
                b, s, r = old_real(root / f"old{n}", n)
                rows.append((f"whole JSON per file (before), {n:,} files", b, s, r,
                             "measured"))
            else:
                b, s = old_estimate(root / f"old{n}", n)
                rows.append((f"whole JSON per file (before), {n:,} files", b, s, None,
                             "bytes exact, seconds sampled"))
            for p in root.glob("*/*"):
                p.unlink()
    print(f"state writes of one job ({os.cpu_count()} cores)\n")
    print("| approach | bytes written | per file | seconds | read half done | how |")
    print("|---|---|---|---|---|---|")
    for name, nbytes, secs, read_s, how in rows:
        n = int(name.rsplit(", ", 1)[1].split()[0].replace(",", ""))
        read = f"{read_s * 1000:.1f} ms" if read_s is not None else "-"
        print(f"| {name} | {nbytes / MB:,.1f} MB | {nbytes / n:,.0f} B | {secs:,.2f} s "
              f"| {read} | {how} |")


if __name__ == "__main__":
    main()
