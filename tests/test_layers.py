"""The wire format lives at the edge: no service, catalog, store or imaging module imports
the handlers or `server/views.py` (JSON shapes and URLs), directly or through another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parent.parent / "server"
EDGE = ("server.handlers", "server.views", "server.app", "server.serving")
INNER = ("server.services", "server.catalog", "server.storage", "server.imaging")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SERVER.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The server modules `path` imports (relative imports resolved), at any depth."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in found if n == "server" or n.startswith("server.")}


def modules() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in SERVER.rglob("*.py")}


def is_under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def reachable(start: str, graph: dict[str, set[str]]) -> dict[str, str]:
    """Every server module `start` reaches by imports, with the module that imported it."""
    seen: dict[str, str] = {}
    todo = [start]
    while todo:
        current = todo.pop()
        for target in graph.get(current, set()):
            if target in graph and target not in seen and target != start:
                seen[target] = current
                todo.append(target)
    return seen


@pytest.mark.parametrize("module", sorted(m for m in modules() if is_under(m, INNER)))
def test_inner_modules_never_reach_the_edge(module: str) -> None:
    graph = modules()
    reached = reachable(module, graph)
    edge = sorted(m for m in reached if is_under(m, EDGE))
    assert edge == [], f"{module} reaches {edge} (via {[reached[m] for m in edge]})"


def test_the_check_sees_an_edge_import() -> None:
    """The handlers import the views: the graph above would catch a service doing so."""
    graph = modules()
    assert "server.views" in reachable("server.handlers.images", graph)
    assert "server.services.library" in graph
    assert "server.services.domain_events" in reachable("server.services.library", graph)
