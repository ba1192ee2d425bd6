"""docker-compose.cluster.yml does what the README says: 3 Qdrant nodes in one cluster,
a Ray head and workers, two API replicas behind one published port, media and job state
on shared volumes, every secret from the environment with no default, and only the load
balancer reachable from outside. Docker is not available to the tests, so the file is
read as data (YAML with its anchors merged) and its settings are built as mmrag would."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from rag.settings import load_settings
from tests.test_deploy import REQUIRED, ROOT, dockerfile, env

FILE = ROOT / "docker-compose.cluster.yml"
SECRETS = {"QDRANT_API_KEY", "MMRAG_API_KEYS", "RAY_AUTH_TOKEN"}
# ${VAR:-default} and ${VAR:?message}, as compose interpolates them.
VARIABLE = re.compile(r"\$\{(?P<var>[A-Z_][A-Z0-9_]*)(?::?(?P<op>[-?])(?P<arg>[^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(FILE.read_text())
    return data


def services(compose: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if n.startswith(prefix)}


def interpolate(value: str, given: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        if m["var"] in given:
            return given[m["var"]]
        assert m["op"] == "-", f"{m['var']} is required: {m['arg']}"
        return m["arg"] or ""

    return VARIABLE.sub(one, value)


def test_three_qdrant_nodes_form_one_cluster(compose: dict[str, Any]) -> None:
    nodes = services(compose, "qdrant-")
    assert sorted(nodes) == ["qdrant-1", "qdrant-2", "qdrant-3"]
    for node in nodes.values():
        assert env(node)["QDRANT__CLUSTER__ENABLED"] == "true"
        assert not node.get("ports"), "Qdrant nodes publish nothing"
    assert nodes["qdrant-1"]["command"] == ["./qdrant", "--uri", "http://qdrant-1:6335"]
    for name in ("qdrant-2", "qdrant-3"):
        assert nodes[name]["command"] == ["./qdrant", "--bootstrap", "http://qdrant-1:6335"]
        assert "qdrant-1" in nodes[name]["depends_on"]
    volumes = [tuple(n["volumes"]) for n in nodes.values()]
    assert len(set(volumes)) == 3, "each node keeps its own storage"


def test_ray_head_and_scalable_workers(compose: dict[str, Any]) -> None:
    head, worker = compose["services"]["ray-head"], compose["services"]["ray-worker"]
    assert head["command"][:3] == ["ray", "start", "--head"]
    assert "--port=6379" in head["command"] and "--block" in head["command"]
    assert "--address=ray-head:6379" in worker["command"]
    assert worker["deploy"]["replicas"] >= 2
    assert "container_name" not in worker, "a fixed name would stop --scale"
    for svc in (head, worker):
        assert not svc.get("ports"), "Ray is reached only inside the compute network"
        assert env(svc)["RAY_AUTH_MODE"] == "token"


def test_two_api_replicas_behind_one_port(compose: dict[str, Any]) -> None:
    replicas = services(compose, "mmrag-")
    assert sorted(replicas) == ["mmrag-1", "mmrag-2"]
    published = {n for n, s in compose["services"].items() if s.get("ports")}
    assert published == {"lb"}
    assert any(str(p).endswith("8080:8080") for p in compose["services"]["lb"]["ports"])
    conf = compose["configs"]["lb"]["content"]
    for name in replicas:
        assert f"server {name}:8080" in conf
    assert "proxy_buffering off" in conf, "SSE streams must not be buffered"
    assert "proxy_set_header Host $$http_host" in conf, "the Host allowlist sees the client's"
    for svc in replicas.values():
        assert svc["command"][:2] == ["mmrag", "serve"] and "0.0.0.0" in svc["command"]
        assert "127.0.0.1:8080/healthz" in " ".join(svc["healthcheck"]["test"])


def test_internal_networks_hold_only_their_users(compose: dict[str, Any]) -> None:
    nets = compose["networks"]
    members: dict[str, set[str]] = {}
    for name, svc in compose["services"].items():
        for net in svc.get("networks") or []:
            members.setdefault(net, set()).add(name)
    assert nets["store"]["internal"] is True and nets["compute"]["internal"] is True
    assert members["store"] == {"qdrant-1", "qdrant-2", "qdrant-3", "mmrag-1", "mmrag-2"}
    assert members["compute"] == {"ray-head", "ray-worker", "mmrag-1", "mmrag-2"}
    assert members["public"] == {"lb", "mmrag-1", "mmrag-2"}


def test_secrets_come_from_the_environment_with_no_default(compose: dict[str, Any]) -> None:
    seen: set[str] = set()
    for name, svc in compose["services"].items():
        for var, value in env(svc).items():
            if ("API_KEY" in var or "TOKEN" in var) and var != "MMRAG_GENERATOR__OPENAI__API_KEY":
                required = REQUIRED.match(value)
                assert required, f"{name}.{var} = {value!r} must be ${{VAR:?...}}"
                seen.add(required["var"])
    assert seen == SECRETS
    ray_only = env(compose["services"]["ray-worker"])
    assert not {"MMRAG_API__API_KEYS", "MMRAG_STORE__API_KEY"} & set(ray_only), \
        "Ray workers get no API or Qdrant keys: they never touch either"
    assert "change-me" not in FILE.read_text()


def test_replicas_and_workers_share_media_and_jobs(compose: dict[str, Any]) -> None:
    mounts = {n: {str(v).split(":")[1]: str(v).split(":")[0] for v in s.get("volumes") or []}
              for n, s in compose["services"].items()}
    for name in ("mmrag-1", "mmrag-2", "ray-head", "ray-worker"):
        assert mounts[name]["/shared/media"] == "media", name
        assert mounts[name]["/shared/jobs"] == "jobs", name
    assert {"media", "jobs"} <= set(compose["volumes"])
    runs = " ".join(args for op, args in dockerfile() if op == "RUN")
    assert "/shared/media" in runs and "/shared/jobs" in runs, "owned by the mmrag user"


def test_api_settings_build_and_point_at_the_cluster(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a replica's settings come to: mmrag's own loader over the compose env."""
    given = {"QDRANT_API_KEY": "q" * 64, "RAY_AUTH_TOKEN": "r" * 64,
             "MMRAG_API_KEYS": '{"k": ["*"]}', "HOME": "/home/x"}
    for var, value in env(compose["services"]["mmrag-1"]).items():
        monkeypatch.setenv(var, interpolate(value, given))
    settings = load_settings()
    assert settings.profile == "cluster"
    assert settings.store.backend == "qdrant" and settings.store.url == "http://qdrant-1:6333"
    assert settings.store.api_key == "q" * 64
    assert settings.store.shard_number == 6 and settings.store.replication_factor == 2
    assert settings.store.write_consistency_factor == 2
    assert settings.ingest.executor == "ray"
    assert str(settings.media_path) == "/shared/media"
    assert str(settings.jobs_path) == "/shared/jobs"
    assert settings.api.api_keys == {"k": ["*"]}
    assert env(compose["services"]["mmrag-1"])["RAY_ADDRESS"] == "ray-head:6379"


def test_the_image_can_carry_ray(compose: dict[str, Any]) -> None:
    steps = dockerfile()
    assert ("ARG", 'MMRAG_EXTRAS=""') in steps
    assert any(op == "RUN" and '".${MMRAG_EXTRAS}"' in args for op, args in steps)
    build = compose["services"]["ray-worker"]["build"]
    assert build["args"]["MMRAG_EXTRAS"] == "[ray]"
    assert 'ray = ["ray[data]' in (ROOT / "pyproject.toml").read_text()


def test_readme_shows_how_to_start_and_scale() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docker compose -f docker-compose.cluster.yml up" in readme
    assert "--scale ray-worker=" in readme
    assert "RAY_AUTH_TOKEN" in readme

