"""The package map in docs/architecture.md agrees with the tree: every package is listed,
module-level imports form no circle, and code that runs on devices imports nothing of the
controller (nor pytest)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "pytest_collab"
DEVICE_SIDE = ("wrapper", "devicekit")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, modules: set[str]) -> set[str]:
    """Absolute ``pytest_collab`` imports executed at import time (not under TYPE_CHECKING,
    not inside functions: those are the lazy imports that keep the plugin light)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("pytest_collab"))
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.startswith("pytest_collab"):
                subs = {f"{node.module}.{a.name}" for a in node.names} & modules
                found.update(subs)   # `from pkg import submodule` needs the submodule,
                if len(subs) < len(node.names):   # `from pkg import name` the package
                    found.add(node.module)
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body + node.orelse + [s for h in getattr(node, "handlers", []) for s in h.body])

    visit(tree.body)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in _top_level_imports(path, set(modules)) if m in modules and m != name}
    return graph


def test_every_package_and_module_is_on_the_map() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    listed = set(re.findall(r"^\| (.+?) \|", text, re.M))
    names = " ".join(listed)
    for entry in sorted(PKG.iterdir()):
        if entry.name.startswith(("_", ".")) or entry.name in ("py.typed", "profiles"):
            continue
        shown = f"`{entry.name}/`" if entry.is_dir() else f"`{entry.name}`"
        assert shown in names, f"{shown} is missing from docs/architecture.md's package table"


def test_no_import_circles() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)


def test_nothing_imports_the_plugin() -> None:
    for path in PKG.rglob("*.py"):
        if path.name == "plugin.py":
            continue
        assert "pytest_collab.plugin" not in path.read_text(), f"{path} imports the plugin"


def test_device_side_packages_import_nothing_of_the_controller() -> None:
    for package in DEVICE_SIDE:
        for path in (PKG / package).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
                for name in names:
                    assert not name.startswith(("pytest_collab", "pytest", "_pytest")), \
                        f"{path.relative_to(ROOT)} imports {name}: device code must not"
