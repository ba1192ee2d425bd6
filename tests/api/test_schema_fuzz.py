"""A bounded schemathesis run against a real server on loopback: every operation in the
OpenAPI document, valid and invalid inputs, a fixed seed. No request may give a 5xx, and
every 4xx must be in the error shape. Its own server and data dir, because the fuzzer
deletes what it finds."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import COFFEE_TXT, TLS_MD, Server, api_settings, serve

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 25  # x 2 modes x ~18 operations: about 900 requests
SEED = 20261126


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(api_settings(tmp_path_factory.mktemp("fuzz"))) as srv:
        srv.ingest("kb", {"corpus/tls.md": TLS_MD.encode(), "corpus/coffee.txt":
                          COFFEE_TXT.encode()})
        yield srv


def test_schemathesis_finds_no_server_errors(fuzz_server: Server) -> None:
    schema = schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")
    statuses: collections.Counter[int] = collections.Counter()
    failures: list[str] = []

    def check(case: Any) -> None:
        response = case.call(base_url=fuzz_server.url, timeout=60)
        statuses[response.status_code] += 1
        where = f"{case.method} {case.formatted_path} -> {response.status_code}"
        if response.status_code >= 500:
            failures.append(f"{where}: {response.text[:300]}")
        elif response.status_code >= 400:
            body = response.json()
            if set(body) != {"error"} or "message" not in body["error"]:
                failures.append(f"{where}: not the error shape: {response.text[:300]}")

    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @seed(SEED)
            @settings(max_examples=EXAMPLES_PER_OPERATION, database=None,
                      deadline=None, suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                check(case)

            try:
                run()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                continue

    total = sum(statuses.values())
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    print(f"\nschemathesis: {len(operations)} operations, {total} requests, "
          f"{server_errors} server errors; statuses {dict(sorted(statuses.items()))}")
    assert total >= 300
    assert not failures, "\n".join(failures[:20])
