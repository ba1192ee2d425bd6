"""The browser and local-token attacks of issue 17, run against a tree of this repo.

    .venv/bin/python benchmarks/attack_browser.py [--tree DIR]

``--tree`` is a checkout of mmrag whose code is attacked (default: this one), so the
same script measures a before and an after: ``git archive <base> | tar -x -C /tmp/base``
then ``--tree /tmp/base``. It starts that tree's app the way ``mmrag serve`` does (API,
chat page, MCP at ``/mcp``, a local token) under uvicorn, twice: keyless on 127.0.0.1,
and with keys on 0.0.0.0 (reached over loopback and over this machine's first
non-loopback address, from ``hostname -I``). Each row is one attack: what the server
answered and whether it worked (data leaked, stored, dropped, accepted). The server.json
and data-dir rows call the tree's own functions; the compose rows read its files.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MMRAG_TEXT__EXPORT_DIR", str(HERE / ".pytest_cache" / "mmrag-models"))

SECRET = "The vault combination is 31-41-59, changed every solstice."
TOKEN = "local-token-for-the-attack-script-0123456789"
ROWS: list[tuple[str, str, str]] = []


def row(attack: str, answer: str, worked: bool | None) -> None:
    verdict = "n/a" if worked is None else ("ATTACK WORKS" if worked else "refused")
    ROWS.append((attack, answer, verdict))
    print(f"{attack:<62} {answer:<34} {verdict}", flush=True)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def lan_address() -> str | None:
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    for word in out.stdout.split():
        if "." in word and not word.startswith("127."):
            return word
    return None


@contextmanager
def serve(settings: Any, bind: str) -> Iterator[tuple[Any, int]]:
    import uvicorn

    from api.app import create_app
    from api.mcp import mount

    app = create_app(settings, local_token=TOKEN)
    mount(app)
    port = free_port("127.0.0.1" if bind == "0.0.0.0" else bind)
    server = uvicorn.Server(uvicorn.Config(app, host=bind, port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server failed to start")
        time.sleep(0.05)
    try:
        yield app, port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def leaked(text: str) -> bool:
    return "vault" in text or '"kb"' in text or "31-41-59" in text


MCP_INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-03-26", "capabilities": {},
    "clientInfo": {"name": "attacker", "version": "0"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def keyless_attacks(data: Path) -> None:
    import httpx

    from rag.settings import load_settings

    settings = load_settings("offline", overrides={"data_dir": data / "keyless"})
    with serve(settings, "127.0.0.1") as (app, port):
        app.state.pipeline.ingest_bytes("kb", {"kb/vault.txt": SECRET.encode()})
        app.state.pipeline.ingest_bytes("x", {"x/note.txt": b"a note to keep"})
        base = f"http://127.0.0.1:{port}"
        evil = {"Host": "attacker.example"}
        with httpx.Client(base_url=base, timeout=60) as c:
            for method, path, body in (
                ("GET", "/v1/collections", None),
                ("POST", "/v1/search", {"collection": "kb", "query": "vault combination"}),
                ("POST", "/v1/chat/completions", {"model": "kb", "messages": [
                    {"role": "user", "content": "What is the vault combination?"}]}),
                ("GET", "/", None),
            ):
                r = c.request(method, path, json=body, headers=evil)
                row(f"rebinding: Host attacker.example {method} {path}", f"{r.status_code}",
                    r.status_code < 400 and (leaked(r.text) or path == "/"))
            r = c.post("/mcp", json=MCP_INIT, headers={**evil, **MCP_HEADERS})
            row("rebinding: Host attacker.example POST /mcp initialize", f"{r.status_code}",
                r.status_code < 400)

            site = {"Origin": "http://evil.example"}
            r = c.post("/v1/collections/kb/documents", headers=site,
                       files={"files": ("planted.txt", b"planted by evil.example")})
            if r.status_code == 202:
                job = r.json()["id"]
                for _ in range(300):
                    if c.get(f"/v1/jobs/{job}").json()["status"] in ("done", "failed"):
                        break
                    time.sleep(0.1)
            docs = [d["source"] for d in c.get("/v1/collections/kb/documents").json()["data"]]
            stored = any("planted" in d for d in docs)
            row("cross-site multipart upload (Origin evil.example)",
                f"{r.status_code}; stored={stored}", stored)
            r = c.delete("/v1/collections/x", headers=site)
            names = [m["name"] for m in c.get("/v1/collections").json()["data"]]
            row("cross-site DELETE /v1/collections/x", f"{r.status_code}; x kept={'x' in names}",
                "x" not in names)
            for label in ("cross-site", "same-site"):
                r = c.post("/v1/collections", json={"name": f"made-{label}"},
                           headers={"Sec-Fetch-Site": label})
                row(f"Sec-Fetch-Site: {label} POST /v1/collections", f"{r.status_code}",
                    r.status_code < 300)
            r = c.post("/v1/collections", json={"name": "made-null"}, headers={"Origin": "null"})
            row("Origin: null POST /v1/collections", f"{r.status_code}", r.status_code < 300)
            r = c.post("/mcp", json=MCP_INIT, headers={**site, **MCP_HEADERS})
            row("cross-site POST /mcp initialize (Origin evil.example)", f"{r.status_code}",
                r.status_code < 400)
            r = c.options("/v1/search", headers={**site, "Access-Control-Request-Method": "POST"})
            acao = r.headers.get("access-control-allow-origin")
            row("CORS preflight from evil.example", f"{r.status_code}; ACAO={acao}",
                acao is not None)
            # What must keep working.
            r = c.post("/v1/search", json={"collection": "kb", "query": "vault"},
                       headers={"Origin": base, "Sec-Fetch-Site": "same-origin"})
            row("control: same-origin POST from the chat page", f"{r.status_code}", None)
            r = c.post("/v1/search", json={"collection": "kb", "query": "vault"})
            row("control: POST without browser headers (SDK, curl)", f"{r.status_code}", None)
        mode = stat.S_IMODE(os.stat(data / "keyless").st_mode)
        row("data dir created by the server: mode", f"{mode:03o}", bool(mode & 0o077))


def keyed_attacks(data: Path) -> None:
    import httpx

    from rag.settings import load_settings

    settings = load_settings("offline", overrides={
        "data_dir": data / "keyed", "api": {"api_keys": {"admin-key": ["*"]}}})
    lan = lan_address()
    with serve(settings, "0.0.0.0") as (app, port):
        app.state.pipeline.ingest_bytes("kb", {"kb/vault.txt": SECRET.encode()})
        local = f"http://127.0.0.1:{port}"
        if lan is None:
            row("local token from a non-loopback client", "no non-loopback address", None)
        else:
            with httpx.Client(base_url=f"http://{lan}:{port}", timeout=60,
                              headers={"Host": f"127.0.0.1:{port}"}) as c:
                r = c.get("/v1/collections", headers={"Authorization": f"Bearer {TOKEN}"})
                row(f"local token from {lan} GET /v1/collections", f"{r.status_code}",
                    r.status_code == 200)
        with httpx.Client(base_url=local, timeout=60) as c:
            for scheme in ("Basic", "Token"):
                r = c.get("/v1/collections", headers={"Authorization": f"{scheme} {TOKEN}"})
                row(f"local token as '{scheme}' GET /v1/collections", f"{r.status_code}",
                    r.status_code == 200)
            bearer = {"Authorization": f"Bearer {TOKEN}"}
            r = c.get("/metrics", headers=bearer)
            row("local token on GET /metrics (not a CLI route)", f"{r.status_code}",
                r.status_code == 200)
            r = c.post("/v1/collections", json={"name": "by-token"}, headers=bearer)
            row("local token on POST /v1/collections (not a CLI route)", f"{r.status_code}",
                r.status_code < 300)
            r = c.post("/mcp", json=MCP_INIT, headers={**bearer, **MCP_HEADERS})
            row("local token on POST /mcp", f"{r.status_code}", r.status_code < 400)
            r = c.get("/v1/collections", headers=bearer)
            row("control: local token, Bearer, loopback, CLI route", f"{r.status_code}", None)
            r = c.get("/v1/collections", headers={"Authorization": "Bearer admin-key",
                                                  "Host": "attacker.example"})
            row("rebinding with keys (Host attacker.example)", f"{r.status_code}", None)


def server_json_attacks(data: Path) -> None:
    from cli.remote import ServerInfo, read_server_file, write_server_file

    info = ServerInfo("http://127.0.0.1:1", os.getpid(), "t0ken")
    d = data / "sj-0644"
    d.mkdir()
    (d / "server.tmp").write_text("{}")
    os.chmod(d / "server.tmp", 0o644)
    path = write_server_file(d, info)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    row("server.json written over a planted 0644 server.tmp: mode", f"{mode:03o}",
        bool(mode & 0o077))

    d = data / "sj-link"
    d.mkdir()
    victim = data / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, d / "server.tmp")
    try:
        write_server_file(d, info)
        error = ""
    except OSError as exc:
        error = type(exc).__name__
    followed = victim.read_text() != "precious"
    row("server.json written with server.tmp a symlink: followed?",
        f"followed={followed} {error}".strip(), followed)

    d = data / "sj-open"
    d.mkdir()
    (d / "server.json").write_text(json.dumps({"url": "http://evil", "pid": 1, "token": "x"}))
    os.chmod(d / "server.json", 0o644)
    got = read_server_file(d)
    row("reader given a 0644 server.json", "trusted" if got else "ignored", got is not None)

    d = data / "sj-owner"
    d.mkdir()
    (d / "server.json").write_text(json.dumps({"url": "http://evil", "pid": 1, "token": "x"}))
    os.chmod(d / "server.json", 0o600)
    if os.getuid() == 0:
        os.chown(d / "server.json", 4242, 4242)
        got = read_server_file(d)
        row("reader given a server.json owned by uid 4242", "trusted" if got else "ignored",
            got is not None)
    else:
        row("reader given a foreign-owned server.json", "needs root to chown", None)

    d = data / "sj-new" / "data"
    write_server_file(d, info)
    mode = stat.S_IMODE(os.stat(d).st_mode)
    row("data dir created by write_server_file: mode", f"{mode:03o}", bool(mode & 0o077))


def compose_checks(tree: Path) -> None:
    import yaml

    compose = yaml.safe_load((tree / "docker-compose.yml").read_text())
    services = compose["services"]
    env = services["mmrag"].get("environment", {})
    keys = str(env.get("MMRAG_API__API_KEYS", ""))
    row("compose: MMRAG_API__API_KEYS default", keys[:34], ":-" in keys or "change-me" in keys)
    ports = services["qdrant"].get("ports") or []
    row("compose: Qdrant published ports", str(ports)[:34], bool(ports))
    qenv = services["qdrant"].get("environment") or {}
    row("compose: Qdrant API key set", str("QDRANT__SERVICE__API_KEY" in qenv),
        "QDRANT__SERVICE__API_KEY" not in qenv)
    users = [ln for ln in (tree / "Dockerfile").read_text().splitlines()
             if ln.strip().upper().startswith("USER ")]
    row("Dockerfile: runs as", users[-1].strip() if users else "root (no USER)", not users)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=HERE)
    args = parser.parse_args()
    tree = args.tree.resolve()
    sys.path.insert(0, str(tree))
    import api

    print(f"code under attack: {Path(api.__file__).parent.parent}\n", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        os.chmod(data, 0o755)
        keyless_attacks(data)
        keyed_attacks(data)
        server_json_attacks(data)
    compose_checks(tree)
    works = sum(1 for r in ROWS if r[2] == "ATTACK WORKS")
    print(f"\n{works} of {sum(1 for r in ROWS if r[2] != 'n/a')} attacks work")


if __name__ == "__main__":
    main()
