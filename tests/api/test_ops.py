"""Health, readiness, metrics, media and collection management."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from tests.api.conftest import COLLECTION

# Real uvicorn servers on loopback: the slow tier (make test-slow).
pytestmark = pytest.mark.slow

def test_health_and_ready(http: httpx.Client) -> None:
    assert http.get("/healthz").json()["status"] == "ok"
    ready = http.get("/readyz").json()
    assert ready["status"] == "ready" and ready["collections"] >= 1
    assert ready["generator"] == "extractive"


def test_metrics_count_requests_by_route_template(http: httpx.Client) -> None:
    http.post("/v1/search", json={"collection": COLLECTION, "query": "coffee"})
    http.get("/v1/collections/nope/documents")
    http.get("/v1/definitely/not/a/route")
    text = http.get("/metrics").text
    assert 'mmrag_http_requests_total{method="POST",route="/v1/search",status="200"}' in text
    assert (
        'mmrag_http_requests_total{method="GET",route="/v1/collections/{name}/documents",'
        'status="404"}' in text
    )
    assert 'route="unmatched"' in text
    assert "mmrag_http_request_duration_seconds_bucket" in text
    assert "/v1/collections/nope" not in text  # raw paths never become labels


def test_metrics_count_ingested_files(http: httpx.Client) -> None:
    from tests.api.conftest import wait_job

    job = http.post("/v1/collections/metered/documents",
                    files=[("files", ("m.txt", b"Meters measure the flow of water.")),
                           ("files", ("bad.pdf", b"%PDF-1.4 broken"))]).json()
    wait_job(http, job["id"])
    text = http.get("/metrics").text
    assert 'mmrag_ingest_files_total{status="added"}' in text
    assert 'mmrag_ingest_files_total{status="failed"}' in text


def test_media_thumbnail_is_small_webp(http: httpx.Client) -> None:
    hits = http.post(
        "/v1/search",
        json={"collection": COLLECTION, "query": "parcel Rotterdam",
              "filter": {"modality": ["image"]}},
    ).json()["hits"]
    assert hits and hits[0]["media_url"]
    thumb = http.get(hits[0]["media_url"], params={"size": 64})
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/webp"
    assert "max-age" in thumb.headers["cache-control"]
    img = Image.open(io.BytesIO(thumb.content))
    assert img.format == "WEBP" and max(img.size) <= 64
    full = Image.open(io.BytesIO(http.get(hits[0]["media_url"]).content))
    assert max(full.size) > 64
    assert http.get("/v1/media/ffffffffffffffff-p1").status_code == 404
    assert http.get("/v1/media/..%2f..%2fetc%2fpasswd").status_code == 404
    assert http.get(hits[0]["media_url"], params={"size": 0}).status_code == 422


def test_collections_lifecycle(http: httpx.Client) -> None:
    created = http.post("/v1/collections", json={"name": "scratch"})
    assert created.status_code == 201 and created.json()["created"] is True
    again = http.post("/v1/collections", json={"name": "scratch"})
    assert again.status_code == 200 and again.json()["created"] is False
    names = [c["name"] for c in http.get("/v1/collections").json()["data"]]
    assert "scratch" in names and COLLECTION in names
    assert "scratch" in [m["id"] for m in http.get("/v1/models").json()["data"]]
    assert http.delete("/v1/collections/scratch").status_code == 200
    assert http.delete("/v1/collections/scratch").status_code == 404
    bad = http.post("/v1/collections", json={"name": "../escape"})
    assert bad.status_code == 400 and "invalid collection name" in bad.json()["error"]["message"]


def test_openapi_schema_documents_the_upload(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    upload = spec["paths"]["/v1/collections/{name}/documents"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
