"""The CLI through a running ``mmrag serve`` on the same data dir.

``mmrag serve`` writes ``<data_dir>/server.json`` (its URL, pid and a per-start local
token, readable by the data dir's owner only) and removes it on exit. Every other
command looks for it first: when that server is alive, the command goes through its HTTP
API instead of opening the store itself. So commands work while a server holds the data
dir, and they answer in well under a second (no torch import, no model load): the server
has everything warm. :class:`RemotePipeline` has the methods of :class:`pipeline.Pipeline`
that the CLI uses, with the same types in and out.

This module must stay light: it imports httpx and our core types, never the pipeline.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pipeline.datadir import ensure_private_dir
from pipeline.gate import process_alive
from rag.errors import (
    BadInput,
    Conflict,
    Forbidden,
    LimitExceeded,
    MmragError,
    ModelUnavailable,
    NotFound,
    Unauthorized,
    UpstreamError,
)
from rag.types import Answer, Citation, Filter, Hit, OcrBox

log = logging.getLogger(__name__)

SERVER_FILE = "server.json"
_ERRORS: dict[int, type[MmragError]] = {
    400: BadInput, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
    413: LimitExceeded, 415: BadInput, 422: BadInput, 502: UpstreamError,
    503: ModelUnavailable,
}


@dataclass
class ServerInfo:
    url: str
    pid: int
    token: str


def write_server_file(data_dir: Path, info: ServerInfo) -> Path:
    """Publish ``info`` as ``server.json``, private to this user from its first byte.

    The bytes go to a fresh temp file with a random name, opened with ``O_EXCL`` (never an
    existing file, whatever its mode) and ``O_NOFOLLOW`` (never through a symlink), mode
    0600 (and ``fchmod``, so the umask cannot widen it); ``rename`` then swaps it in, and
    a rename replaces a planted ``server.json`` symlink rather than writing through it.
    """
    ensure_private_dir(data_dir)
    path = data_dir / SERVER_FILE
    body = json.dumps({"url": info.url, "pid": info.pid, "token": info.token}).encode()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = data_dir / f".{SERVER_FILE}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o600)
            break
        except FileExistsError:
            continue  # 64 random bits taken: someone planted that exact name; pick another
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def remove_server_file(data_dir: Path, pid: int) -> None:
    path = data_dir / SERVER_FILE
    info = read_server_file(data_dir)
    if info is not None and info.pid == pid:
        path.unlink(missing_ok=True)


def untrusted_reason(st: os.stat_result) -> str | None:
    """Why a ``server.json`` with this ``fstat`` must not be believed, or None.

    Its token is a credential and its URL is where the CLI sends the user's questions and
    file paths: a file someone else could have written (another owner, or group/other
    write or read bits) may point the CLI at their server, or may have leaked its token.
    """
    if not stat.S_ISREG(st.st_mode):
        return "it is not a regular file"
    if st.st_uid != os.getuid():
        return f"it is owned by uid {st.st_uid}, not by this user (uid {os.getuid()})"
    if stat.S_IMODE(st.st_mode) & 0o077:
        return (f"its mode is {stat.S_IMODE(st.st_mode):03o}: other users could read or "
                "change it (mmrag writes it 0600)")
    return None


_ignored: set[tuple[Path, str]] = set()


def _ignore(path: Path, reason: str) -> None:
    """Say once per process why a server file is ignored (the CLI then runs locally)."""
    if (path, reason) not in _ignored:
        _ignored.add((path, reason))
        log.warning("ignoring %s: %s", path, reason)


def read_server_file(data_dir: Path) -> ServerInfo | None:
    """The server this data dir's ``server.json`` names, if the file can be trusted.

    Opened with ``O_NOFOLLOW`` (a symlink fails) and ``O_NONBLOCK`` (a planted FIFO cannot
    hang the CLI), then checked on the open descriptor, so the file checked is the file
    read.
    """
    path = data_dir / SERVER_FILE
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            _ignore(path, "it is a symlink (mmrag writes a regular file)")
        return None
    with os.fdopen(fd, "rb") as f:
        reason = untrusted_reason(os.fstat(f.fileno()))
        if reason is not None:
            _ignore(path, reason)
            return None
        try:
            raw = json.loads(f.read(64 * 1024))
            return ServerInfo(str(raw["url"]), int(raw["pid"]), str(raw["token"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def find_server(data_dir: Path, wait_s: float = 120.0) -> ServerInfo | None:
    """The live server of ``data_dir``, waiting while it starts up; None if there is
    none (or only the file a killed server left behind)."""
    info = read_server_file(data_dir)
    if info is None or not process_alive(info.pid):
        return None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            r = httpx.get(info.url + "/healthz", timeout=2.0)
            if r.status_code == 200:
                return info
        except httpx.TransportError:
            pass
        if not process_alive(info.pid) or time.monotonic() > deadline:
            return None
        time.sleep(0.2)


_MIMES = {b"\x89PNG": "image/png", b"\xff\xd8\xff\xe0": "image/jpeg",
          b"\xff\xd8\xff\xe1": "image/jpeg", b"\xff\xd8\xff\xdb": "image/jpeg",
          b"RIFF": "image/webp", b"GIF8": "image/gif"}


@dataclass
class ImageRef:
    """A query image as bytes: the server decodes and checks it."""

    name: str
    data: bytes

    def data_url(self) -> str:
        # The server trusts the bytes (magic numbers), not this label; it only needs to be
        # one of the image types it accepts. Other formats (TIFF, BMP) go as PNG.
        data, mime = self.data, _MIMES.get(self.data[:4])
        if mime is None:
            from io import BytesIO

            from PIL import Image

            buf = BytesIO()
            with Image.open(BytesIO(self.data)) as img:
                img.convert("RGB").save(buf, format="PNG")
            data, mime = buf.getvalue(), "image/png"
        return f"data:{mime};base64," + base64.b64encode(data).decode()


def _filter_json(flt: Filter | None) -> dict[str, Any] | None:
    if flt is None or flt.is_empty():
        return None
    out: dict[str, Any] = {}
    if flt.modality:
        out["modality"] = flt.modality
    if flt.source_prefix:
        out["source_prefix"] = flt.source_prefix
    if flt.source:
        out["source"] = flt.source
    if flt.metadata:
        out["metadata"] = flt.metadata
    return out


def _hit(row: dict[str, Any]) -> Hit:
    return Hit(
        id=row["id"], score=float(row["score"]), source=row["source"], page=int(row["page"]),
        modality=row["modality"], text=row.get("text", ""), chunk=int(row.get("chunk", 0)),
        doc_id=row.get("doc_id", ""), media=row.get("media"),
        boxes=[OcrBox.from_payload(b) for b in row.get("boxes") or []],
        metadata=dict(row.get("metadata") or {}),
    )


def _citation(row: dict[str, Any]) -> Citation:
    url = row.get("media_url") or ""
    media = url.rsplit("/v1/media/", 1)[-1] if "/v1/media/" in url else None
    box = row.get("box")
    return Citation(
        index=int(row["index"]), source=row["source"], page=int(row["page"]),
        modality=row["modality"], text=row.get("text", ""), score=float(row["score"]),
        doc_id=row.get("doc_id", ""), chunk=int(row.get("chunk", 0)),
        box=tuple(box) if box else None, media=media,  # type: ignore[arg-type]
    )


class RemotePipeline:
    """The CLI's pipeline methods, answered by a running server."""

    def __init__(self, info: ServerInfo, timeout: float = 600.0) -> None:
        self.info = info
        self.http = httpx.Client(base_url=info.url, timeout=timeout,
                                 headers={"Authorization": f"Bearer {info.token}"})

    def __enter__(self) -> RemotePipeline:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            r = self.http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise UpstreamError(f"the mmrag server at {self.info.url} did not answer: {exc}"
                                ) from exc
        if r.status_code >= 400:
            try:
                message = r.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = r.text[:300]
            if r.status_code == 401:
                message += (f" (the server at {self.info.url} takes this data dir's local "
                            "token only from loopback addresses: bind it to 127.0.0.1 or "
                            "0.0.0.0)")
            raise _ERRORS.get(r.status_code, MmragError)(message)
        return r.json()

    # --- the Pipeline methods the CLI uses ----------------------------------------------
    def read_image(self, path: str | Path) -> ImageRef:
        try:
            return ImageRef(str(path), Path(path).read_bytes())
        except OSError as exc:
            raise MmragError(f"{path}: cannot read ({exc.strerror or exc})") from exc

    def search(self, collection: str, text: str | None = None, image: Any = None,
               limit: int | None = None, flt: Filter | None = None) -> list[Hit]:
        body: dict[str, Any] = {"collection": collection, "query": text or None}
        if image is not None:
            body["image"] = image.data_url()
        if limit is not None:
            body["limit"] = limit
        if (f := _filter_json(flt)) is not None:
            body["filter"] = f
        return [_hit(h) for h in self._call("POST", "/v1/search", json=body)["hits"]]

    def ask(self, collection: str, question: str, image: Any = None,
            history: list[dict[str, Any]] | None = None, flt: Filter | None = None,
            limit: int | None = None) -> Answer:
        content: list[dict[str, Any]] = [{"type": "text", "text": question}]
        if image is not None:
            content.append({"type": "image_url", "image_url": {"url": image.data_url()}})
        body: dict[str, Any] = {"model": collection, "messages": [
            *(history or []), {"role": "user", "content": content}]}
        if limit is not None:
            body["limit"] = limit
        data = self._call("POST", "/v1/chat/completions", json=body)
        return Answer(text=data["choices"][0]["message"]["content"] or "",
                      citations=[_citation(c) for c in data.get("citations") or []],
                      model=data.get("generator") or "")

    def collections(self) -> list[dict[str, Any]]:
        rows = self._call("GET", "/v1/collections")["data"]
        return [{"name": r["name"], "points": r["points"]} for r in rows]

    def documents(self, collection: str) -> list[dict[str, Any]]:
        rows = self._call("GET", f"/v1/collections/{collection}/documents")["data"]
        return [{k: r[k] for k in ("source", "doc_id", "mime", "points", "pages")}
                for r in rows]

    def delete_source(self, collection: str, source: str) -> int:
        data = self._call("DELETE", f"/v1/collections/{collection}/documents",
                          params={"source": source})
        return int(data.get("points") or 0)

    def drop(self, collection: str) -> None:
        self._call("DELETE", f"/v1/collections/{collection}")

    def ingest(self, collection: str, paths: list[str], metadata: dict[str, Any] | None = None,
               progress: Callable[[Any], None] | None = None, rebuild: bool = False) -> Any:
        from pipeline.report import FileResult, IngestReport, Progress  # light: no models

        started = time.perf_counter()
        job = self._call("POST", f"/v1/collections/{collection}/ingest", json={
            "paths": [str(p) for p in paths], "cwd": os.getcwd(), "metadata": metadata or {},
            "rebuild": rebuild})
        seen: set[int] = set()
        for state in self._follow(job):
            for i, f in enumerate(state["files"]):
                if i not in seen and f["status"] != "pending":
                    seen.add(i)
                    if progress:
                        progress(Progress(len(seen), state["files_total"], state["chunks"],
                                          f["source"], FileResult(**f), i))
            job = state
        if job["status"] != "done":
            raise MmragError(f"the ingest job {job['id']} {job['status']}: {job.get('error')}")
        report = IngestReport(collection, [FileResult(**f) for f in job["files"]])
        report.seconds = time.perf_counter() - started
        return report

    def _follow(self, job: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield job
        with self.http.stream("GET", f"/v1/jobs/{job['id']}/events") as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    yield json.loads(line[6:])
