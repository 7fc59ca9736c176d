"""The ``collab`` command's conventions hold for every sub-command: one spelling of the
project-root option, one exit-code convention, a quiet exit when the reader of its
output goes away."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bundle_helpers import write_run
from pytest_collab.cli import EXIT_CLOSED_PIPE, EXIT_ERROR, build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def _all_options(parser: argparse.ArgumentParser, path: str = "collab") -> dict[str, set[str]]:
    """Every (sub-)command's option strings, by command path."""
    found = {path: {o for a in parser._actions for o in a.option_strings}}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_all_options(sub, f"{path} {name}"))
    return found


def test_one_spelling_of_the_project_root_and_reports_dir() -> None:
    options = _all_options(build_parser())
    for command, flags in options.items():
        assert not flags & {"--rootdir", "--project-root", "--project", "--root-dir"}, command
        assert not flags & {"--reports", "--out-dir", "--runs-dir"}, command
    assert "--root" in options["collab lab up"]
    assert all("--reports-dir" in options[c] for c in ("collab report", "collab export", "collab compare"))


def test_errors_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / "a", [{"test": "test_tiny[1]", "params": {"n": 1}, "qps": 1.0}])
    assert main(["compare", str(run)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("collab compare: error: compare needs at least two runs") and err.count("\n") == 1
    assert main(["compare", str(run), str(tmp_path / "missing")]) == EXIT_ERROR
    assert "Traceback" not in capsys.readouterr().err


def test_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    rows = [{"test": f"test_tiny[{i}]", "params": {"n": i}, "qps": float(i), "latency_ms": 1.0 + i}
            for i in range(400)]
    a = write_run(tmp_path / "a", [dict(r) for r in rows])
    b = write_run(tmp_path / "b", [dict(r, qps=r["qps"] + 1) for r in rows], run_id="20260101-000001-bbbbbb")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "pytest_collab", "compare", str(a), str(b)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()   # like `| head -1`: read a line, then go away
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == EXIT_CLOSED_PIPE
    assert first.startswith(b"baseline ") and err == ""  # no traceback, no "Exception ignored"
