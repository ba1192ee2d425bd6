"""Search and chat through the HTTP API: latency alone, then throughput under load.

    .venv/bin/python benchmarks/bench_api.py [--copies 6] [--data-dir DIR] [--seconds 10]
        [--levels 1,16,64] [--routes search,chat] [--set api.max_queue=32]

Starts the real app under uvicorn on a loopback port (offline profile: MiniLM + BM25 +
OCR, Qdrant Edge, extractive answers) and ingests the corpus: ``--corpus DIR``, or
``examples/corpus`` with every file copied ``--copies`` times under distinct bytes (a
small generated corpus when the examples are missing); ``--data-dir`` keeps the store
so that later runs (another checkout, other settings) reuse the same collection.

Then: sequential ``POST /v1/search`` over one keep-alive connection and the same queries
through ``Pipeline.search`` in-process (what HTTP and the service add); then, for
``/v1/search`` and ``/v1/chat/completions``, 1, 16 and 64 concurrent closed-loop clients
(``benchmarks/_load.py``, a separate process) for ``--seconds`` each, printing
requests/s, its ratio to the 1-client rate, latency percentiles of answered requests,
shed requests (429/503 with ``Retry-After``) and failures. Targets (2 cores): 16 clients
>= 1.5x the 1-client rate with p95 <= 150 ms; 64 clients: nothing failed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import httpx  # noqa: E402
from _server import running, status_kb  # noqa: E402  (benchmarks/ is the script's folder)

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


def copied_corpus(src: Path, dst: Path, copies: int) -> Path:
    """``copies`` versions of every file of ``src``, each with different bytes (a text
    file gets a numbered last line, other files trailing zero bytes, which their
    decoders ignore), so deduplication keeps them all: a bigger collection of the same
    kinds of media."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if not f.is_file():
            continue
        data = f.read_bytes()
        for k in range(copies):
            if f.suffix in (".txt", ".md"):
                body = data + f"\n\n(copy {k + 1})\n".encode() if k else data
            else:
                body = data + b"\0" * k
            (dst / f"{f.stem}_{k}{f.suffix}").write_bytes(body)
    return dst


def load(url: str, path: str, bodies: list[dict[str, Any]], clients: int, seconds: float,
         headers: dict[str, str]) -> dict[str, Any]:
    """``clients`` concurrent clients for ``seconds``, in a separate process (_load.py)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"path": path, "bodies": bodies, "clients": clients, "seconds": seconds,
                   "headers": headers}, f)
    cpu0 = _cpu_s()
    try:
        run = subprocess.run([sys.executable, str(Path(__file__).with_name("_load.py")), url,
                              f.name], capture_output=True, text=True, timeout=seconds + 300)
    finally:
        os.unlink(f.name)
    if run.returncode != 0:
        raise SystemExit(f"load generator failed: {run.stderr}")
    out: dict[str, Any] = json.loads(run.stdout)
    out["rps"] = len(out["ms"]) / out["elapsed"]
    # The server's CPU time per answered request (this process serves; the clients are
    # another): on a shared machine it moves far less than requests/s does.
    out["cpu_ms"] = (_cpu_s() - cpu0) * 1000 / max(1, len(out["ms"]))
    return out


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def level_row(route: str, clients: int, res: dict[str, Any], base_rps: float) -> str:
    ms = res["ms"] or [float("nan")]
    ratio = res["rps"] / base_rps if base_rps else float("nan")
    return (f"| {route:<6} | {clients:>7} | {len(res['ms']):>6} | {res['rps']:>7.1f} | "
            f"{ratio:>5.2f}x | {pct(ms, 0.5):>7.1f} | {pct(ms, 0.95):>7.1f} | "
            f"{pct(ms, 0.99):>7.1f} | {res['shed']:>5} | {res['failed']:>6} | "
            f"{res['cpu_ms']:>6.1f} | {res.get('client_cpu_ms', float('nan')):>6.1f} |")


def throughput(url: str, queries: list[str], args: argparse.Namespace) -> list[str]:
    """Search and chat at each concurrency level; rows of the throughput table."""
    bodies = {
        "search": ("/v1/search", [{"collection": COLLECTION, "query": q, "limit": args.limit}
                                  for q in queries]),
        "chat": ("/v1/chat/completions",
                 [{"model": COLLECTION, "messages": [{"role": "user", "content": q}]}
                  for q in queries]),
    }
    rows: list[str] = []
    for route in args.routes.split(","):
        path, body = bodies[route]
        load(url, path, body, 4, 2.0, {})  # warm-up
        base = 0.0
        for clients in (int(c) for c in args.levels.split(",")):
            res = load(url, path, body, clients, args.seconds, {})
            if clients == 1:
                base = res["rps"]
            rows.append(level_row(route, clients, res, base))
            print(rows[-1], file=sys.stderr)
            for err in res["errors"]:
                print(f"  failed: {err}", file=sys.stderr)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=None,
                    help="folder to ingest (default: examples/corpus x --copies)")
    ap.add_argument("--copies", type=int, default=1,
                    help="copies of each example file (the README's table: 6)")
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="keep the store here and reuse it (ingest only when empty)")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--levels", default="1,16,64")
    ap.add_argument("--routes", default="search,chat")
    ap.add_argument("--seconds", type=float, default=10.0, help="per concurrency level")
    ap.add_argument("--cli-runs", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a settings override, e.g. api.max_queue=32 (dotted)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus
        if corpus is None:
            examples = ROOT / "examples" / "corpus"
            corpus = (copied_corpus(examples, Path(tmp) / "corpus", args.copies)
                      if examples.is_dir() else generated_corpus(_mkdir(Path(tmp) / "corpus")))
        data = args.data_dir or Path(tmp) / "data"
        overrides: dict[str, Any] = {"data_dir": data}
        for item in args.set:
            key, _, value = item.partition("=")
            node = overrides
            *parents, leaf = key.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = json.loads(value) if value[:1] in "0123456789[{-tfn" else value
        settings = load_settings("offline", overrides=overrides)
        token = secrets.token_urlsafe(16)
        app = create_app(settings, local_token=token)
        queries = text_queries(ROOT / "examples" / "corpus" if args.corpus is None else corpus)
        t0 = time.perf_counter()
        with running(app) as url:
            started = time.perf_counter() - t0
            pipeline = app.state.pipeline
            if COLLECTION in pipeline.collection_names() and pipeline.count(COLLECTION):
                print(f"server up in {started:.1f}s; reusing {data}", file=sys.stderr)
            else:
                report = pipeline.ingest(COLLECTION, [str(corpus)])
                print(f"server up in {started:.1f}s; ingest: {report.summary()}",
                      file=sys.stderr)
            docs = len(pipeline.documents(COLLECTION))
            points = pipeline.count(COLLECTION)

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

            levels = throughput(url, queries, args)

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

    print(f"\nsearch latency, ms ({docs} documents, {points} points, limit {args.limit}, "
          f"offline profile, {os.cpu_count()} CPUs)\n")
    print("| path                               |     n |     p50 |     p95 |     p99 |"
          "    mean |     min |")
    print("|------------------------------------|------:|--------:|--------:|--------:|"
          "--------:|--------:|")
    print(row("POST /v1/search (HTTP, keep-alive)", http_ms))
    print(row("Pipeline.search (in-process)", direct_ms))
    print(f"\nthroughput: closed-loop clients for {args.seconds:.0f} s per level, one "
          "connection each, in a separate process; x = requests/s over the 1-client rate; "
          "shed = 429/503 with Retry-After (the client waits it); failed = anything else; "
          "cpu = the server's CPU ms per answered request; client = the load generator's "
          "CPU ms per request (taken from the same cores)\n")
    print("| route  | clients |     ok |   req/s |      x |     p50 |     p95 |     p99 |"
          "  shed | failed |    cpu | client |")
    print("|--------|--------:|-------:|--------:|-------:|--------:|--------:|--------:|"
          "------:|-------:|-------:|-------:|")
    for line in levels:
        print(line)
    peak_mb = status_kb(os.getpid(), "VmHWM") / 1024  # the server runs in this process
    print(f"\nserver process peak RSS: {peak_mb:,.0f} MB (models, store, caches; the "
          "load generator is a separate process)")
    if cli_s:
        print(f"\n`mmrag search` next to the server, wall s: "
              f"{', '.join(f'{x:.2f}' for x in cli_s)} (median {statistics.median(cli_s):.2f}; "
              "target <= 1.5)")


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    main()
