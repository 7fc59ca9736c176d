"""Helpers of the emulated-lab tests (imported by name: pytest puts this folder on sys.path)."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_experiment(testcase: str, out: Path, *args: str, timeout: float = 900) -> Path:
    """``pytest testcases/<testcase> --lan=emulated ARGS`` as a user runs it; its run folder.

    A subprocess, not pytester: the experiment's own conftest and options load exactly as
    on the command line, and its devices are the lab's containers over real SSH.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    proc = subprocess.run([sys.executable, "-m", "pytest", f"testcases/{testcase}", "--lan=emulated",
                           "--collab-out", str(out), "-q", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{testcase} on the emulated lab failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    runs = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 1, f"expected one run folder under {out}, found {runs}"
    return runs[0]


TORCH_WHEEL_GLOB = "torch-*+cpu-cp311-cp311-manylinux*_x86_64.whl"


def torch_wheel() -> Path:
    """The torch CPU cp311 wheel for the lab's torch layer; skips without one (fails under CI)."""
    env = os.environ.get("PYTEST_COLLAB_TORCH_WHEEL")
    found = [Path(env)] if env else sorted(Path("/opt/wheels").glob(TORCH_WHEEL_GLOB))
    if not found or not found[-1].is_file():
        reason = "no torch CPU cp311 wheel: set PYTEST_COLLAB_TORCH_WHEEL or put one in /opt/wheels"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    return found[-1]


def relaunch(lab: Any, client: Any, **emulation: Any) -> Any:
    """The session's lab brought up again with ``emulation`` keys replaced: its images are
    rebuilt where their inputs changed (cached by content hash) and its device containers
    replaced by ones from them (same addresses, same host key)."""
    from pytest_collab.labs import up

    lan = dataclasses.replace(lab, emulation={**(lab.emulation or {}), **emulation})
    up(lan, client=client, progress=lambda line: None)
    return lan
