"""The shipped docker-compose.yml and Dockerfile are safe as they are: no default API key,
Qdrant unreachable from outside and keyed, mmrag not root, and the health checks still
reach the server. Docker is not available to the tests, so the files are read as data
(YAML, Dockerfile instructions) and checked for what ``docker compose up`` would do."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# ${VAR:?message} : compose refuses to start without VAR and prints the message.
REQUIRED = re.compile(r"^\$\{(?P<var>[A-Z_][A-Z0-9_]*):?\?(?P<message>[^}]+)\}$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def env(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {k: str(v) for k, v in raw.items()}


def test_api_keys_have_no_default_and_fail_fast_with_a_message(
    compose: dict[str, Any]
) -> None:
    value = env(compose["services"]["mmrag"])["MMRAG_API__API_KEYS"]
    required = REQUIRED.match(value)
    assert required, f"MMRAG_API__API_KEYS must be ${{MMRAG_API_KEYS:?...}}, is {value!r}"
    assert required["var"] == "MMRAG_API_KEYS"
    assert "MMRAG_API_KEYS" in required["message"]
    assert "change-me" not in (ROOT / "docker-compose.yml").read_text()


def test_qdrant_is_internal_and_keyed(compose: dict[str, Any]) -> None:
    services, networks = compose["services"], compose.get("networks") or {}
    qdrant, mmrag = services["qdrant"], services["mmrag"]
    assert not qdrant.get("ports"), "Qdrant must not publish ports on the host"
    assert qdrant.get("network_mode") != "host"
    q_nets = set(qdrant.get("networks") or [])
    assert q_nets, "Qdrant must be on an explicit network, not the default one"
    for name in q_nets:
        assert (networks.get(name) or {}).get("internal") is True, name
        others = {s for s, svc in services.items() if name in (svc.get("networks") or [])}
        assert others == {"qdrant", "mmrag"}, f"network {name} is shared with {others}"
    key = REQUIRED.match(env(qdrant)["QDRANT__SERVICE__API_KEY"])
    assert key and key["var"] == "QDRANT_API_KEY"
    used = REQUIRED.match(env(mmrag)["MMRAG_STORE__API_KEY"])
    assert used and used["var"] == "QDRANT_API_KEY", "mmrag must send Qdrant's key"


def test_mmrag_publishes_8080_from_a_second_network(compose: dict[str, Any]) -> None:
    mmrag, networks = compose["services"]["mmrag"], compose.get("networks") or {}
    assert any(str(p).endswith("8080:8080") for p in mmrag.get("ports") or [])
    public = [n for n in mmrag.get("networks") or []
              if not (networks.get(n) or {}).get("internal")]
    assert public, "mmrag needs a non-internal network to publish its port"


def test_no_secret_has_a_default(compose: dict[str, Any]) -> None:
    """A ``:-default`` on a key would ship a known secret, as ``change-me`` did."""
    for name, service in compose["services"].items():
        for var, value in env(service).items():
            if "API_KEY" in var and var != "MMRAG_GENERATOR__OPENAI__API_KEY":
                assert REQUIRED.match(value), f"{name}.{var} = {value!r}"


def test_image_runs_as_a_fixed_non_root_user_owning_data() -> None:
    steps = dockerfile()
    users = [args for op, args in steps if op == "USER"]
    assert users, "the image must set USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), user
    assert user.isdigit(), "a fixed numeric uid (runAsNonRoot can check it)"
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert re.search(rf"useradd\b[^&;]*--uid {user}\b", runs), "the uid is created"
    assert re.search(rf"chown {user}(:\d+)? [^&;]*/data", runs), "/data is the user's"
    assert "chmod 700 /data" in runs
    last_user = max(i for i, (op, _) in enumerate(steps) if op == "USER")
    assert all(op != "RUN" for op, _ in steps[last_user:]), "nothing runs as root after USER"


def test_health_checks_reach_the_server_by_an_allowed_host(compose: dict[str, Any]) -> None:
    """The checks run inside the containers: they must use a loopback name (the Host
    allowlist answers those always) and a route that needs no key."""
    test = compose["services"]["mmrag"]["healthcheck"]["test"]
    command = " ".join(test[1:]) if test[0] in ("CMD", "CMD-SHELL") else " ".join(test)
    assert "http://127.0.0.1:8080/healthz" in command
    steps = dict(dockerfile())
    assert "http://127.0.0.1:8080/healthz" in steps["HEALTHCHECK"]
    qdrant = " ".join(compose["services"]["qdrant"]["healthcheck"]["test"])
    assert "127.0.0.1/6333" in qdrant


def test_the_served_command_binds_all_interfaces_with_keys(compose: dict[str, Any]) -> None:
    command = compose["services"]["mmrag"]["command"]
    assert command[:2] == ["mmrag", "serve"] and "0.0.0.0" in command
    cmd = shlex.split(dict(dockerfile())["CMD"].strip("[]").replace(",", " "))
    assert "serve" in cmd


def test_readme_says_how_to_set_both_secrets() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "MMRAG_API_KEYS" in readme and "QDRANT_API_KEY" in readme
