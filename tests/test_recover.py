"""A controller killed with SIGKILL: its programs die with it, and `collab recover` rebuilds
the run's tables from the raw wrapper logs and the results journal, losing nothing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytest_plugins = ["pytester"]

TEST = """
import pathlib, time, pytest

@pytest.mark.devices(rpi=1)
def test_dies(collab):
    p = collab.start("rpi", "prog.py", ready="READY")
    collab.record(phase="before the crash", value=42)
    time.sleep(1.5)                      # samples flow at 20 Hz
    pathlib.Path({marker!r}).write_text(str(p.pid))
    time.sleep(600)
"""
PROG = "import time\nprint('READY', flush=True)\ntime.sleep(600)\n"


def test_sigkilled_controller_loses_nothing(pytester: pytest.Pytester) -> None:
    marker = pytester.path / "program.pid"
    pytester.makepyfile(prog=PROG, test_dies=TEST.format(marker=str(marker)))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collab-out=out",
                             "--collab-hz=20"], cwd=pytester.path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the test never got going"
        program_pid = int(marker.read_text())
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The wrapper's dead man's switch (its stdin closed with the controller) ends the program.
    deadline = time.monotonic() + 15
    while os.path.exists(f"/proc/{program_pid}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{program_pid}"), "the device program outlived its controller"

    run = next(p for p in (pytester.path / "out").iterdir() if p.name != "latest")
    assert not (run / "metrics.parquet").exists() and not (run / "results.parquet").exists()
    done = subprocess.run([sys.executable, "-m", "pytest_collab", "recover", str(run)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "metrics.parquet" in done.stdout and "results.parquet" in done.stdout

    import pandas as pd

    results = pd.read_parquet(run / "results.parquet")
    assert list(results["value"]) == [42] and list(results["phase"]) == ["before the crash"]
    metrics = pd.read_parquet(run / "metrics.parquet")
    assert set(metrics["device"]) == {"rpi-1"} and set(metrics["role"]) == {"prog"}
    assert metrics["test"].iloc[0].endswith("test_dies.py::test_dies")
    assert (metrics["metric"] == "rss_bytes").sum() >= 10        # ~1.5 s at 20 Hz, all kept
    assert (run / "run.json").is_file()
    again = subprocess.run([sys.executable, "-m", "pytest_collab", "recover", str(run)],
                           capture_output=True, text=True, timeout=60)
    assert "nothing to recover" in again.stdout
