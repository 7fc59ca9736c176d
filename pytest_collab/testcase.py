"""What a test case is on disk: ``testcases/<name>/`` and the files the framework reads there.

An experiment is a folder: its tests, its device programs and helper modules, and optional
``options.py`` (pytest options), ``report_sections.py`` (report figures),
``requirements.txt`` (the deps image layer) and ``wheels/`` (its wheels, for offline labs).
Every module that needs the layout asks here. pytest imports a test case's helper modules
(``import inputs``) as top-level modules, so two experiments with a helper of the same name
would silently share whichever was imported first. :func:`isolate` keeps them apart: before
a test case's module is collected or its tests run, its folder goes first on ``sys.path``
and any module of the same name loaded from another folder is dropped from ``sys.modules``.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

#: The folder under the project root that holds the experiments.
TESTCASES_DIR = "testcases"
OPTIONS_FILE = "options.py"
REPORT_SECTIONS_FILE = "report_sections.py"
REQUIREMENTS_FILE = "requirements.txt"
#: wheels for ``requirements.txt`` shipped with the experiment (offline labs): deps layer only
WHEELS_DIR = "wheels"
#: Never a test case's code: caches, build output and run results (and every dot-file or
#: dot-folder, e.g. an experiment's ``.artifacts/``, shipped one by one with ``collab.put``).
NOT_CODE_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "node_modules",
                           "reports"})
NOT_CODE_SUFFIXES = (".pyc", ".pyo", ".egg-info")


def testcase_path(name: str, root: Path | str | None = None) -> Path:
    """``<root>/testcases/<name>``; without ``root`` the relative path, as a user types it."""
    rel = Path(TESTCASES_DIR) / name
    return Path(root) / rel if root is not None else rel


def options_files(root: Path | str) -> list[Path]:
    """Every experiment's ``options.py`` under ``<root>/testcases/``, in name order."""
    return sorted((Path(root) / TESTCASES_DIR).glob(f"*/{OPTIONS_FILE}"))


def belongs_to(nodeid: str, name: str) -> bool:
    """Whether a node id is a test of test case ``name`` (rooted at the project or at ``testcases/``)."""
    return f"{TESTCASES_DIR}/{name}/" in nodeid or nodeid.startswith(f"{name}/")


def test_id(nodeid: str, testcase: str) -> str:
    """The node id below the test case folder: stable wherever the test case lives."""
    marker = f"{testcase}/"
    return nodeid.split(marker, 1)[1] if marker in nodeid else nodeid


def is_code(rel_parts: tuple[str, ...]) -> bool:
    """Whether a path inside a test case folder (its parts) is part of the experiment's code:
    what a sync ships, an image's code layer holds and a bundle carries."""
    return not any(p.startswith(".") or p in NOT_CODE_DIRS or p.endswith(NOT_CODE_SUFFIXES) for p in rel_parts)


@functools.lru_cache(maxsize=1024)
def testcase_name(path: Path, rootdir: Path) -> str:
    """The experiment a test belongs to: its folder under ``testcases/``, else its folder.

    Cached: every test of a module asks again, and ``resolve()`` walks the path with a
    syscall per component (measured: ~26 us a test, of the fixture's ~70 us own cost).
    """
    try:
        parts = path.resolve().relative_to(rootdir.resolve()).parts
    except ValueError:
        parts = ()
    if len(parts) > 2 and parts[0] == TESTCASES_DIR:
        return parts[1]
    return path.parent.name


@functools.lru_cache(maxsize=256)
def _own_modules(folder: Path) -> tuple[str, ...]:
    """Top-level module names a folder provides (``x.py`` files and ``x/`` packages)."""
    names = [p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "conftest")]
    names += [p.name for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").is_file()]
    return tuple(sorted(names))


def _origin(module: object) -> Path | None:
    file = getattr(module, "__file__", None)
    return Path(file).resolve() if file else None


def isolate(folder: Path) -> list[str]:
    """Make ``import helper`` inside ``folder``'s tests resolve to ``folder/helper.py``.

    Returns the module names dropped because another folder had provided them. Folders
    that are packages (an ``__init__.py``) use package-qualified imports and are left alone.
    """
    folder = folder.resolve()
    if (folder / "__init__.py").is_file():
        return []
    entry = str(folder)
    if not sys.path or sys.path[0] != entry:
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(0, entry)
    dropped = []
    for name in _own_modules(folder):
        module = sys.modules.get(name)
        if module is None:
            continue
        origin = _origin(module)
        if origin is not None and folder not in origin.parents:
            del sys.modules[name]
            dropped.append(name)
    return dropped
