"""Helpers of the emulated-lab tests (imported by name: pytest puts this folder on sys.path)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
