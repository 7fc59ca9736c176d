"""The run folder: its id, its layout and ``run.json`` (see docs/architecture.md).

Every path of a run is spelled here once, so the plugin, the writers, the report and
the CLI can not disagree about where a file lives. Only stdlib: the plugin imports it
at session start.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
import secrets
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from pytest_collab.errors import RunDataError

LATEST = "latest"
DEFAULT_OUT_DIR = Path("reports")
_RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")
_SLUG_MAX = 120


def new_run_id(now: datetime | None = None) -> str:
    """``YYYYmmdd-HHMMSS-<6 hex>``: sorts by start time, unique across parallel runs."""
    return f"{(now or datetime.now()).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def is_run_id(text: str) -> bool:
    return bool(_RUN_ID.match(text))


def slug(nodeid: str) -> str:
    """A filesystem-safe folder name for a test node id, stable across runs.

    Long ids are cut and get a hash suffix so that two long ids never share a folder.
    """
    text = _UNSAFE.sub("_", nodeid.replace("::", "--")).strip("._-") or "test"
    if len(text) > _SLUG_MAX:
        digest = hashlib.sha1(nodeid.encode()).hexdigest()[:8]
        text = f"{text[:_SLUG_MAX - 9]}-{digest}"
    return text


class RunDir:
    """The paths of one run folder ``reports/<run-id>/``; creates nothing but log dirs."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.parquet"

    @property
    def results(self) -> Path:
        return self.root / "results.parquet"

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def report_html(self) -> Path:
        return self.root / "report.html"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def parts(self) -> Path:
        """Per-process streaming parts (xdist workers), merged then removed."""
        return self.root / ".parts"

    def logs_for(self, test_nodeid: str) -> Path:
        """``logs/<test-slug>/`` of one test, created on first use."""
        path = self.logs / slug(test_nodeid)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @classmethod
    def create(cls, out_dir: Path, run_id: str | None = None) -> RunDir:
        """Make ``out_dir/<run_id>/`` and point ``out_dir/latest`` at it."""
        out_dir = Path(out_dir)
        run = cls(out_dir / (run_id or new_run_id()))
        run.root.mkdir(parents=True, exist_ok=True)
        _point_latest(out_dir, run.root.name)
        return run

    def write_run_json(self, info: dict[str, Any]) -> Path:
        """Write ``run.json`` atomically and durably (a reader never sees half a file)."""
        from pytest_collab.results.durable import write_text_durably

        return write_text_durably(self.run_json, json.dumps(info, indent=2, default=str) + "\n")

    def read_run_json(self) -> dict[str, Any]:
        if not self.run_json.is_file():
            raise RunDataError(f"{self.run_json}: missing; is {self.root} a pytest-collab run "
                               "folder? pass a folder under reports/")
        try:
            data = json.loads(self.run_json.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunDataError(f"{self.run_json}: unreadable ({exc}); restore or delete it") from exc
        if not isinstance(data, dict):
            raise RunDataError(f"{self.run_json}: expected a JSON object")
        return data


def _point_latest(out_dir: Path, name: str) -> None:
    """Swap the ``latest`` symlink atomically; silently skipped where symlinks fail."""
    link = out_dir / LATEST
    if link.exists() and not link.is_symlink():
        return  # a real folder named latest belongs to the user
    tmp = out_dir / f".{LATEST}.{os.getpid()}.tmp"
    try:
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass


def resolve_run_dir(run: str | Path, out_dir: Path = DEFAULT_OUT_DIR) -> RunDir:
    """A run folder from a path, ``latest``, or a run id under ``out_dir``."""
    text = str(run)
    candidates = [Path(text)]
    if text == LATEST or is_run_id(text) or not Path(text).exists():
        candidates.append(Path(out_dir) / text)
    for path in candidates:
        if path.is_dir():
            return RunDir(path.resolve())
    raise RunDataError(f"{text}: no such run folder (looked in {', '.join(map(str, candidates))});"
                       f" pass a run folder, a run id under {out_dir}/, or '{LATEST}'")


def git_info(path: Path) -> dict[str, Any]:
    """Commit, branch and dirty flag of the repository holding ``path``; {} outside git."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(path), *args], capture_output=True,
                                  text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "dirty": bool(status) if status is not None else None}


def versions() -> dict[str, str]:
    """Versions that explain a number: interpreter, platform and the key packages.

    Read from package metadata so that nothing heavy (torch!) is imported for it.
    """
    from pytest_collab import __version__

    found = {"python": platform.python_version(), "platform": platform.platform(),
             "pytest_collab": __version__}
    for dist in ("pytest", "pyarrow", "numpy", "pandas", "torch"):
        module = sys.modules.get(dist)
        version = getattr(module, "__version__", None) if module else None
        if version is None:
            try:
                version = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
        found[dist] = str(version)
    return found
