"""Do answers cite the document search ranks first? Through the official openai SDK.

    .venv/bin/python benchmarks/bench_answers.py [--data-dir DIR] [--skip-ingest]

Starts the real app under uvicorn on a loopback port (offline profile: MiniLM + BM25 +
OCR, Qdrant Edge, extractive answers), ingests ``examples/corpus`` (unless
``--skip-ingest`` reuses ``--data-dir``), then for every query of
``examples/queries.jsonl`` (text, image, or both) asks ``POST /v1/search`` for the top
hit and ``chat.completions.create`` (openai SDK) for an answer, and prints per kind how
often the answer's citations include the top search hit's document, and cite it first.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from openai import OpenAI  # noqa: E402

from api.app import create_app  # noqa: E402
from rag.settings import load_settings  # noqa: E402

EXAMPLES = ROOT / "examples"
COLLECTION = "examples"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def data_url(path: Path) -> str:
    mime = {".png": "image/png", ".jpg": "image/jpeg"}.get(path.suffix, "image/png")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="mmrag-answers-"))
    settings = load_settings("offline", overrides={"data_dir": data_dir})
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        if not args.skip_ingest:
            start = time.perf_counter()
            report = app.state.pipeline.ingest(COLLECTION, [str(EXAMPLES / "corpus")])
            print(f"ingested in {time.perf_counter() - start:.0f} s: {report.summary()}")
        url = f"http://127.0.0.1:{port}"
        client = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=300)
        rows = [json.loads(x) for x in (EXAMPLES / "queries.jsonl").read_text().splitlines()
                if x.strip()]
        stats: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        with httpx.Client(base_url=url, timeout=300) as http:
            for row in rows:
                image = data_url(EXAMPLES / row["image"]) if row.get("image") else None
                body: dict[str, Any] = {"collection": COLLECTION, "query": row["query"] or None}
                if image:
                    body["image"] = image
                hits = http.post("/v1/search", json=body).json()["hits"]
                top = hits[0]["source"] if hits else None
                content: list[dict[str, Any]] = []
                if row["query"]:
                    content.append({"type": "text", "text": row["query"]})
                if image:
                    content.append({"type": "image_url", "image_url": {"url": image}})
                completion = client.chat.completions.create(
                    model=COLLECTION, messages=[{"role": "user", "content": content}]  # type: ignore[list-item]
                )
                cites = [c["source"] for c in (completion.model_extra or {}).get("citations") or []]
                for kind in (row["kind"], "all"):
                    s = stats[kind]
                    s[0] += 1
                    s[1] += top in cites
                    s[2] += bool(cites) and cites[0] == top
                    s[3] += bool(top) and Path(top).name == row["target"]
        print("| kind | questions | answer cites top hit | cites it first | top hit is target |")
        print("|---|---|---|---|---|")
        for kind in sorted(stats, key=lambda k: (k == "all", k)):
            n, cited, first, right = stats[kind]
            print(f"| {kind} | {n} | {cited}/{n} ({cited / n:.2f}) | {first}/{n} | {right}/{n} |")
        print(f"data dir: {data_dir}")
    finally:
        server.should_exit = True
        thread.join(timeout=30)


if __name__ == "__main__":
    main()
