"""``mmrag serve`` (the HTTP API under uvicorn) and ``mmrag ask`` (a cited answer in the
terminal). Loaded by ``cli/main.py`` through :func:`add_commands`.

``serve`` will not expose an open server: with no API keys configured it binds only to
loopback and refuses any other host with a message that says how to add keys. Keys are
the only access control the API has, so "no keys" must mean "only this machine".
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from typing import Any

from cli.common import common_options, connect, open_image, settings_from_args
from cli.remote import ServerInfo, remove_server_file, write_server_file
from rag.errors import ConfigError
from rag.settings import ApiSettings
from rag.types import Answer

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def check_bind(host: str, api: ApiSettings) -> str | None:
    """Refuse a non-loopback host when no keys are set; return a start-up notice then.

    Returns ``None`` when keys are configured (any host is fine), a notice for the
    keyless loopback case, and raises :class:`ConfigError` for keyless exposure.
    """
    from api.security import HostAllowlist  # lazy: fastapi is not every command's cost

    HostAllowlist.from_settings(api)  # '*' in api.allowed_hosts without keys: refused
    if api.api_keys:
        return None
    if host.strip().lower() not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"refusing to serve on {host!r} without API keys: anyone who can reach it could "
            "read, change and delete every collection. Either bind to 127.0.0.1 "
            "(--host 127.0.0.1) or configure keys, e.g. "
            "MMRAG_API__API_KEYS='{\"<a long random key>\": [\"*\"]}' or api.api_keys in "
            "a profile"
        )
    return (
        f"no API keys configured: serving on loopback only ({host}); set api.api_keys to "
        "serve other hosts"
    )


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    host = args.host or settings.api.host
    port = args.port or settings.api.port
    # The bind address given on the command line is one of the server's Host names too.
    settings = settings.model_copy(update={
        "api": settings.api.model_copy(update={"host": host, "port": port})})
    notice = check_bind(host, settings.api)  # before any model loads: fail fast
    if notice:
        print(f"mmrag: {notice}", file=sys.stderr)
    import uvicorn

    from api.app import create_app
    from api.mcp import mount
    from api.security import HostAllowlist

    print(f"mmrag: answering Host names {HostAllowlist.from_settings(settings.api).describe()}"
          " (api.allowed_hosts adds more); cross-site writes refused"
          + (f"; CORS for {', '.join(settings.api.cors_origins)}"
             if settings.api.cors_origins else "; CORS off"), file=sys.stderr)
    loopback_reachable = host in ("0.0.0.0", "::", "") or host.strip().lower() in LOOPBACK_HOSTS
    if not loopback_reachable:
        print(f"mmrag: bound to {host} only: other mmrag commands on this machine cannot use "
              "this server (its local token counts only over loopback); bind 0.0.0.0 to "
              "serve both", file=sys.stderr)

    print(f"mmrag: serving on http://{host}:{port} (profile {settings.profile}); chat page "
          f"at /, MCP at /mcp", file=sys.stderr)
    # One worker: the embedded store lets one process open a collection at a time. Other
    # mmrag commands on this data dir find the server through server.json and use it.
    token = secrets.token_urlsafe(32)
    # Removed at shutdown by the app (uvicorn ends the process by re-raising SIGTERM, so a
    # `finally` here would not run); a killed server's file is ignored (its pid is dead).
    app = create_app(settings, local_token=token, on_shutdown=lambda: remove_server_file(
        settings.data_path, os.getpid()))
    mount(app)  # MCP over streamable HTTP at /mcp, behind the same keys
    connect_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host.strip("[]")
    url = f"http://{'[' + connect_host + ']' if ':' in connect_host else connect_host}:{port}"
    write_server_file(settings.data_path, ServerInfo(url, os.getpid(), token))
    try:
        uvicorn.run(app, host=host, port=port, log_level=args.log_level)
    finally:
        remove_server_file(settings.data_path, os.getpid())
    return 0


def format_answer(answer: Answer) -> str:
    """The answer, then numbered sources with file, page and (where known) the box."""
    lines = [answer.text.rstrip()]
    if answer.citations:
        lines += ["", "Sources:"]
    for c in answer.citations:
        where = c.source + (f", page {c.page}" if c.page > 0 else "")
        if c.box:
            where += ", box (" + ", ".join(f"{v:.2f}" for v in c.box) + ")"
        lines.append(f"[{c.index}] {where}")
        snippet = " ".join(c.text.split())
        if snippet:
            lines.append(f"    {snippet[:200]}")
    return "\n".join(lines)


def cmd_ask(args: argparse.Namespace) -> int:
    with connect(args) as pipe:
        answer = pipe.ask(args.collection, args.question, open_image(args.image, pipe),
                          limit=args.limit)
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False, indent=2))
    else:
        print(format_answer(answer))
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the HTTP API (OpenAI-compatible chat, search, uploads)")
    p.add_argument("--host", default=None, help="bind address (default: api.host, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: api.port, 8080)")
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    common_options(p, local_flag=False)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("ask", help="answer a question from a collection, with citations")
    p.add_argument("question", nargs="?", default="")
    p.add_argument("--collection", required=True)
    p.add_argument("--image", default=None, help="an image to ask about (with or without text)")
    p.add_argument("--limit", type=int, default=None, help="how many sources to retrieve")
    p.add_argument("--json", action="store_true")
    common_options(p)
    p.set_defaults(func=cmd_ask)
