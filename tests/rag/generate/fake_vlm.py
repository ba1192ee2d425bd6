"""A tiny OpenAI-compatible chat server for tests: records every request, answers with a
configurable reply, streams real SSE chunks ending in ``data: [DONE]``.

It speaks just enough of ``POST /v1/chat/completions`` (and ``GET /v1/models``) for the
official ``openai`` SDK, so tests exercise mmrag's real client code path and can assert
on the exact JSON it sends. Runs on 127.0.0.1 on a free port in a background thread.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_REPLY = (
    "The X200 router has four gigabit Ethernet ports [1]. "
    "The label on its back gives the admin address 192.168.1.1 [2]."
)


@dataclass
class Recorded:
    """One request as received: path, headers (lower-cased names) and JSON body."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeVLM:
    """Configure the public fields between requests; read ``requests`` afterwards."""

    reply: str = DEFAULT_REPLY
    model: str | None = None  # the model name echoed back; None: echo the request's
    # Fail every request with this status and JSON error body (None: answer normally).
    fail_status: int | None = None
    fail_message: str = "something went wrong"
    delay_s: float = 0.0  # sleep before answering (timeout tests)
    chunk_chars: int = 12  # characters per streamed delta
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 321, "completion_tokens": 27, "total_tokens": 348}
    )
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the server first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeVLM:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeVLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def last(self) -> dict[str, Any]:
        """The JSON body of the latest chat request."""
        chats = [r for r in self.requests if r.path.endswith("/chat/completions")]
        assert chats, "no chat request was received"
        return chats[-1].body


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeVLM
    # HTTP/1.0: a streamed body simply ends when the connection closes.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        fake = self.server_fake
        if self.path.rstrip("/").endswith("/models"):
            name = fake.model or "fake-vlm"
            self._send_json(200, {"object": "list", "data": [{"id": name, "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        fake = self.server_fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "body is not JSON"}})
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake.requests.append(Recorded(self.path, headers, body))
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if fake.delay_s:
            time.sleep(fake.delay_s)
        if fake.fail_status is not None:
            self._send_json(
                fake.fail_status,
                {"error": {"message": fake.fail_message, "type": "fake", "code": None}},
            )
            return
        model = fake.model or str(body.get("model", "fake-vlm"))
        if body.get("stream"):
            self._stream(fake, body, model)
        else:
            self._send_json(200, _completion(fake.reply, model, fake.usage))

    def _stream(self, fake: FakeVLM, body: dict[str, Any], model: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()

        def send(payload: dict[str, Any] | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()

        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model}
        send({**base, "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        ]})
        text = fake.reply
        step = max(1, fake.chunk_chars)
        for start in range(0, len(text), step):
            send({**base, "choices": [
                {"index": 0, "delta": {"content": text[start:start + step]},
                 "finish_reason": None}
            ]})
        send({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            send({**base, "choices": [], "usage": fake.usage})
        send("[DONE]")


def _completion(text: str, model: str, usage: dict[str, int]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }
