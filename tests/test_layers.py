"""The layer rule of DESIGN.md, checked on the source: imports only go down.

core (``rag`` types/settings/errors/payload, ``configs``) <- stages (``rag`` stages,
``ingest``) <- ``pipeline`` (the composition root) <- ``policy`` (rules every surface
applies the same way) <- surfaces (``api``, ``cli``, ``mcpserver``; ``api`` mounts MCP
at ``/mcp``, so it may import ``mcpserver``, never the reverse). Every import counts,
including ones inside functions and under ``TYPE_CHECKING``, and no module-level import
cycle is allowed anywhere.

``python -m tests.test_layers`` prints the package import graph.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("configs", "rag", "ingest", "pipeline", "policy", "api", "cli", "mcpserver")

# The core of ``rag``: what surfaces may use besides the pipeline.
RAG_CORE = ("rag.types", "rag.errors", "rag.settings", "rag.payload", "rag.evaluate",
            "rag.timecode")

# package -> packages it may import
ALLOWED: dict[str, set[str]] = {
    "configs": set(),
    "rag": {"configs"},
    "ingest": {"rag"},
    "pipeline": {"rag", "ingest"},
    "policy": {"pipeline", "rag"},
    "api": {"pipeline", "rag", "policy", "mcpserver"},
    "mcpserver": {"pipeline", "rag", "policy"},
    "cli": {"pipeline", "rag", "policy", "api", "mcpserver"},
}


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        base = ROOT / pkg
        if not base.is_dir():
            continue
        for path in base.rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports_of(path: Path, module: str, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    is_pkg = path.name == "__init__.py"
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{a.name}" for a in node.names)
    return found


def _ours(name: str, known: dict[str, Path]) -> str | None:
    """The longest module of ours that ``name`` names (``a.b.C`` -> ``a.b``)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def package_graph() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in known.items():
        pkg = module.split(".")[0]
        for name in imports_of(path, module):
            target = _ours(name, known)
            if target and target.split(".")[0] != pkg:
                graph[pkg].add(target.split(".")[0])
    return graph


def test_imports_only_go_down() -> None:
    known = modules()
    bad = []
    for module, path in known.items():
        pkg = module.split(".")[0]
        for name in imports_of(path, module):
            target = _ours(name, known)
            if target is None:
                continue
            tpkg = target.split(".")[0]
            if tpkg == pkg:
                continue
            if tpkg not in ALLOWED[pkg]:
                bad.append(f"{module} imports {target}")
            elif pkg in ("policy", "api", "cli", "mcpserver") and tpkg == "rag" and not any(
                target == c or target.startswith(c + ".") for c in RAG_CORE
            ):
                bad.append(f"{module} (above the pipeline) imports the stage {target}")
    assert not bad, "imports that break the layers:\n" + "\n".join(sorted(bad))


def test_no_import_cycles() -> None:
    known = modules()
    graph = {
        m: {t for n in imports_of(p, m) if (t := _ours(n, known)) and t != m}
        for m, p in known.items()
    }
    # A package imports its own __init__ when a submodule is imported; that edge is how
    # Python works, not a cycle of ours.
    for m in graph:
        graph[m] = {t for t in graph[m] if not m.startswith(t + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_package_graph_is_acyclic_and_matches_the_layers() -> None:
    graph = package_graph()
    assert "ingest" not in graph["rag"] and "pipeline" not in graph["rag"]
    assert not graph["rag"] - {"configs"}
    assert not graph["pipeline"] & {"policy", "api", "cli", "mcpserver"}
    assert not graph["policy"] & {"api", "cli", "mcpserver"}
    assert "api" not in graph["mcpserver"]


if __name__ == "__main__":
    for pkg, deps in sorted(package_graph().items()):
        print(f"{pkg:10} -> {', '.join(sorted(deps)) or '(nothing)'}")
