"""The OpenAPI document describes the errors the API returns (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.app import create_app
from tests.conftest import offline


def schema(tmp_path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = create_app(offline(tmp_path)).openapi()
    return doc


def test_error_responses_are_documented_with_the_error_schema(tmp_path: Path) -> None:
    doc = schema(tmp_path)
    paths = doc["paths"]
    expected = {
        ("/v1/chat/completions", "post"): {"400", "401", "403", "404", "413", "415", "422"},
        ("/v1/search", "post"): {"400", "401", "404", "413", "415", "422"},
        ("/v1/collections/{name}/documents", "post"): {"400", "401", "403", "404", "413",
                                                      "415", "422", "429"},
        ("/v1/collections/{name}/documents", "delete"): {"401", "404", "422"},
        ("/v1/jobs/{job_id}", "get"): {"401", "404", "422"},
        ("/v1/media/{key}", "get"): {"400", "401", "403", "404", "422"},
        ("/v1/media/{key}/url", "post"): {"401", "403", "404", "422"},
        ("/v1/models", "get"): {"401", "403"},
        ("/metrics", "get"): {"401", "403"},
    }
    for (path, method), statuses in expected.items():
        responses = paths[path][method]["responses"]
        assert statuses <= set(responses), (path, method, sorted(responses))
        for status in statuses:
            ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorResponse"), (path, method, status, ref)
    upload = paths["/v1/collections/{name}/documents"]["post"]["responses"]
    assert "Retry-After" in upload["429"]["headers"]
    assert "Allow" in paths["/v1/search"]["post"]["responses"]["405"]["headers"]
    error = doc["components"]["schemas"]["ErrorBody"]
    assert set(error["properties"]) == {"message", "type", "code", "param"}
    # FastAPI's own validation-error shape is never what we return, so it is not listed.
    assert "HTTPValidationError" not in doc["components"]["schemas"]
