"""A real server for the API tests: the app under uvicorn on a free loopback port, in a
background thread, over the offline profile (packaged MiniLM, BM25, rapidocr, Qdrant
Edge, extractive answers) and a small corpus written here.

Servers are session-scoped so the models load once; tests that change state use their
own collections. Limits are set small so the limit tests stay fast.
"""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image, ImageDraw, ImageFont

from api.app import create_app
from api.mcp import mount as mount_mcp
from rag.settings import Settings
from tests.conftest import offline

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
COLLECTION = "kb"

# Small limits: each limit test sends a little more than these.
MAX_UPLOAD_BYTES = 256 * 1024
MAX_FILES = 3
MAX_PIXELS = 4_000_000
MAX_INFLIGHT = 1024 * 1024

TLS_MD = """# Certificate rotation

To rotate TLS certificates on the gateway, run `certctl rotate --all` from the ops host.
Rotation must happen every ninety days, and the new certificate is picked up without a
restart of the gateway.
"""
COFFEE_TXT = """The office espresso machine is descaled every Friday afternoon with citric acid.
Fresh beans are delivered on Mondays by a small roaster from Lisbon.
"""
INVOICE_TEXT = ["Parcel 4471 ships", "from Rotterdam harbour"]
PRESS_TEXT = [
    "Hydraulic press maintenance",
    "The hydraulic press needs its piston seals replaced every six months.",
    "Check the oil pressure gauge before each shift.",
]


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if FONT.exists():
        return ImageFont.truetype(str(FONT), size)
    return ImageFont.load_default(size=size)


def text_png(lines: list[str], size: int = 56) -> bytes:
    """A white image with large black text: what OCR reads reliably."""
    img = Image.new("RGB", (1300, 120 + 90 * len(lines)), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((40, 50 + 90 * i), line, fill="black", font=font(size))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def text_pdf(lines: list[str]) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, invariant=True)
    pdf.setFont("Helvetica", 12)
    for i, line in enumerate(lines):
        pdf.drawString(72, 760 - 20 * i, line)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@dataclass
class Corpus:
    root: Path
    png: bytes

    def files(self) -> list[Path]:
        return sorted(self.root.iterdir())


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("corpus")
    (root / "tls.md").write_text(TLS_MD)
    (root / "coffee.txt").write_text(COFFEE_TXT)
    png = text_png(INVOICE_TEXT)
    (root / "invoice.png").write_bytes(png)
    (root / "press.pdf").write_bytes(text_pdf(PRESS_TEXT))
    return Corpus(root, png)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running app: its URL, settings and (for seeding) its pipeline."""

    url: str
    settings: Settings
    app: Any

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    @property
    def pipeline(self) -> Any:
        return self.app.state.pipeline

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def ingest(self, collection: str, files: dict[str, bytes]) -> None:
        """Seed a collection through the pipeline the server runs (same process)."""
        report = self.pipeline.ingest_bytes(collection, files)
        assert not report.failed, report.summary()


@contextmanager
def serve(settings: Settings, local_token: str | None = None, host: str = "127.0.0.1"
          ) -> Iterator[Server]:
    """The app as ``mmrag serve`` runs it: the API, the chat page and MCP at ``/mcp``
    (bound to ``host``; the URL is the loopback one either way)."""
    app = create_app(settings, local_token=local_token)
    mount_mcp(app)
    port = free_port()
    config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                            lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server failed to start; see the log above")
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not start in 120 s")
        time.sleep(0.05)
    try:
        yield Server(f"http://127.0.0.1:{port}", settings, app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def api_settings(data_dir: Path, **api: Any) -> Settings:
    return offline(
        data_dir,
        api={
            "max_upload_bytes": MAX_UPLOAD_BYTES,
            "max_files_per_request": MAX_FILES,
            "max_inflight_upload_bytes": MAX_INFLIGHT,
            "image_url_allowlist": ["localhost", "127.0.0.1", "images.example.invalid"],
            # test_images fetches from this server as the image host "images.test".
            "allowed_hosts": ["images.test"],
            **api,
        },
        ingest={"max_pixels": MAX_PIXELS},
    )


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, corpus: Corpus) -> Iterator[Server]:
    """No API keys; collection ``kb`` holds the corpus under ``corpus/<name>``."""
    settings = api_settings(tmp_path_factory.mktemp("api-data"))
    with serve(settings) as srv:
        srv.ingest(COLLECTION, {f"corpus/{p.name}": p.read_bytes() for p in corpus.files()})
        yield srv


KEYS = {"admin-key": ["*"], "team-key": ["team"]}


@pytest.fixture(scope="session")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """API keys on: ``admin-key`` sees everything, ``team-key`` only ``team``."""
    settings = api_settings(tmp_path_factory.mktemp("api-keyed"), api_keys=KEYS)
    with serve(settings) as srv:
        srv.ingest("team", {"team/tls.md": TLS_MD.encode()})
        srv.ingest("secret", {"secret/coffee.txt": COFFEE_TXT.encode()})
        yield srv


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def wait_job(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']}")
        time.sleep(0.1)


def raw_request(server: Server, head: str) -> tuple[int, str]:
    """Send raw HTTP/1.1 (for requests a well-behaved client refuses to make) and return
    the status and body of the response."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    header, _, body = data.partition(b"\r\n\r\n")
    return int(header.split()[1]), body.decode()
