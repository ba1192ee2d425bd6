"""Search latency through the HTTP API, printed as a table.

    .venv/bin/python benchmarks/bench_api.py [--corpus DIR] [--requests 200] [--warmup 20]

Starts the real app under uvicorn on a loopback port (offline profile: MiniLM + BM25 +
OCR, Qdrant Edge, extractive answers) with a temporary data dir, ingests the corpus
(``examples/corpus`` when it exists, else a small generated one), then times sequential
``POST /v1/search`` requests over one keep-alive connection with httpx, cycling through
the text queries (``examples/queries.jsonl``, or built-in ones). The same queries are
then timed against ``Pipeline.search`` in-process, so the table shows what HTTP, JSON
and the service layer add on top of retrieval. Target: p50 < 50 ms on CPU.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import httpx  # noqa: E402
from _server import running  # noqa: E402  (benchmarks/ is the script's folder)

from api.app import create_app  # noqa: E402
from cli.remote import ServerInfo, write_server_file  # noqa: E402
from rag.settings import load_settings  # noqa: E402

COLLECTION = "bench"
TOPICS = {
    "tls_rotation.md": "To rotate TLS certificates on the gateway run certctl rotate --all; "
    "certificates expire after ninety days and the gateway reloads them without a restart.",
    "postgres_vacuum.md": "Autovacuum reclaims dead tuples; when a table bloats, lower "
    "autovacuum_vacuum_scale_factor and raise the cost limit so cleanup keeps up.",
    "k8s_probes.md": "A liveness probe that fires during start-up restarts healthy pods; "
    "add a startupProbe with a generous failureThreshold for slow-starting services.",
    "redis_eviction.txt": "With maxmemory reached and allkeys-lru, session keys were "
    "evicted and users were logged out; use volatile-lru and give sessions a TTL.",
    "dns_outage.md": "The outage began when the resolver cache expired and the upstream "
    "DNS servers were unreachable through the firewall change made that morning.",
    "backup_policy.md": "Nightly snapshots are kept for 14 days, weekly ones for 3 months; "
    "restores are tested every quarter on a scratch cluster.",
    "oncall_handbook.md": "The on-call engineer acknowledges pages within five minutes and "
    "escalates to the incident commander after thirty minutes without progress.",
    "git_branching.md": "Feature branches are named feat/<ticket>, live at most a week, and "
    "hotfixes are cherry-picked onto the release branch after review.",
    "coffee_machine.txt": "The espresso machine is descaled every Friday with citric acid; "
    "beans arrive on Mondays from a roaster in Lisbon.",
    "vpn_setup.md": "Install the WireGuard client, import the profile from the portal and "
    "enable the kill switch before connecting from public networks.",
}
QUERIES = [
    "how do I rotate TLS certificates",
    "table keeps growing on disk, which vacuum settings",
    "pods restarted while starting up",
    "why were users logged out when redis was full",
    "what caused the DNS outage",
    "how long are backups kept",
    "when should on-call escalate",
    "branch naming rules",
    "when is the espresso machine descaled",
    "how to connect to the VPN",
]


def generated_corpus(folder: Path, copies: int = 3) -> Path:
    """A few hundred words per topic, several near-copies each, so ranking has work."""
    for name, text in TOPICS.items():
        stem, ext = name.rsplit(".", 1)
        for k in range(copies):
            body = f"# {stem.replace('_', ' ').title()} ({k + 1})\n\n" + "\n\n".join(
                [text] * (4 + k)
            )
            (folder / f"{stem}_{k}.{ext}").write_text(body)
    return folder


def text_queries(corpus: Path) -> list[str]:
    jsonl = corpus.parent / "queries.jsonl"
    if corpus == ROOT / "examples" / "corpus" and jsonl.exists():
        from rag.evaluate import read_queries

        found = [q.query for q in read_queries(jsonl) if q.query]
        if found:
            return found
    return QUERIES


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(label: str, ms: list[float]) -> str:
    return (
        f"| {label:<34} | {len(ms):>5} | {pct(ms, 0.5):>7.1f} | {pct(ms, 0.95):>7.1f} | "
        f"{pct(ms, 0.99):>7.1f} | {statistics.fmean(ms):>7.1f} | {min(ms):>7.1f} |"
    )


def concurrent(url: str, queries: list[str], args: argparse.Namespace
               ) -> tuple[list[float], float]:
    """``args.concurrency`` clients, each on its own keep-alive connection, sending
    ``args.requests`` searches between them; latency per request and requests/s."""
    lock = threading.Lock()
    counter = iter(range(args.requests))
    latencies: list[float] = []

    def client() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                body = {"collection": COLLECTION, "query": queries[i % len(queries)],
                        "limit": args.limit}
                start = time.perf_counter()
                r = http.post("/v1/search", json=body)
                elapsed = (time.perf_counter() - start) * 1000
                if r.status_code != 200:
                    raise SystemExit(f"search failed: {r.status_code} {r.text}")
                with lock:
                    latencies.append(elapsed)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, len(latencies) / (time.perf_counter() - started)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--cli-runs", type=int, default=5)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus or ROOT / "examples" / "corpus"
        if not corpus.is_dir():
            folder = Path(tmp) / "corpus"
            folder.mkdir()
            corpus = generated_corpus(folder)
        settings = load_settings("offline", overrides={"data_dir": Path(tmp) / "data"})
        token = secrets.token_urlsafe(16)
        app = create_app(settings, local_token=token)
        queries = text_queries(corpus)
        t0 = time.perf_counter()
        with running(app) as url:
            started = time.perf_counter() - t0
            pipeline = app.state.pipeline
            report = pipeline.ingest(COLLECTION, [str(corpus)])
            print(f"server up in {started:.1f}s; ingest: {report.summary()}", file=sys.stderr)

            http_ms: list[float] = []
            with httpx.Client(base_url=url, timeout=60) as client:
                for i in range(args.warmup + args.requests):
                    body = {"collection": COLLECTION, "query": queries[i % len(queries)],
                            "limit": args.limit}
                    start = time.perf_counter()
                    response = client.post("/v1/search", json=body)
                    elapsed = (time.perf_counter() - start) * 1000
                    if response.status_code != 200:
                        raise SystemExit(f"search failed: {response.status_code} {response.text}")
                    if i >= args.warmup:
                        http_ms.append(elapsed)

            direct_ms: list[float] = []
            for i in range(args.requests):
                start = time.perf_counter()
                pipeline.search(COLLECTION, queries[i % len(queries)], None, args.limit)
                direct_ms.append((time.perf_counter() - start) * 1000)

            conc_ms, conc_rps = concurrent(url, queries, args)

            # `mmrag search` next to the running server: it finds server.json and asks.
            write_server_file(settings.data_path, ServerInfo(url, os.getpid(), token))
            cli_s = []
            for i in range(args.cli_runs):
                start = time.perf_counter()
                run = subprocess.run(
                    [str(ROOT / ".venv" / "bin" / "mmrag"), "search", queries[i % len(queries)],
                     "--collection", COLLECTION, "--profile", "offline", "--data-dir",
                     str(settings.data_path), "--limit", "3"],
                    capture_output=True, text=True, timeout=300)
                cli_s.append(time.perf_counter() - start)
                if run.returncode != 0:
                    raise SystemExit(f"mmrag search failed: {run.stderr}")

    points = sum(f.points for f in report.files)
    print(f"\nsearch latency, ms ({len(report.files)} files, {points} points, "
          f"limit {args.limit}, offline profile, {os.cpu_count()} CPUs)\n")
    print("| path                               |     n |     p50 |     p95 |     p99 |"
          "    mean |     min |")
    print("|------------------------------------|------:|--------:|--------:|--------:|"
          "--------:|--------:|")
    print(row("POST /v1/search (HTTP, keep-alive)", http_ms))
    print(row("Pipeline.search (in-process)", direct_ms))
    print(row(f"POST /v1/search, {args.concurrency} clients", conc_ms))
    print(f"\n{args.concurrency} concurrent clients: {conc_rps:.1f} requests/s")
    print(f"`mmrag search` next to the server, wall s: "
          f"{', '.join(f'{x:.2f}' for x in cli_s)} (median {statistics.median(cli_s):.2f}; "
          "target <= 1.5)")
    p50 = pct(http_ms, 0.5)
    print(f"\nHTTP p50 {p50:.1f} ms: {'meets' if p50 < 50 else 'misses'} the 50 ms target; "
          f"HTTP + service overhead at p50: {p50 - pct(direct_ms, 0.5):.1f} ms")


if __name__ == "__main__":
    main()
