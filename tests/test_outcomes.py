"""run.json says what happened to each test: passed, failed, error, skipped or interrupted,
with the reason, the lease wait and the log folder (docs/internal-api.md, the outcome contract)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PROG = "import time\nprint('READY', flush=True)\ntime.sleep(600)\n"

HANGS = """
import pathlib, time, pytest

@pytest.mark.devices(rpi=1)
def test_first(collab):
    collab.record(value=1)

@pytest.mark.devices(rpi=1)
def test_hangs(collab):
    collab.start("rpi", "prog.py", ready="READY")
    collab.record(value=2)
    pathlib.Path({marker!r}).write_text("go")
    time.sleep(600)
"""


def _run_json(root: Path) -> dict:
    run = next(p for p in (root / "out").iterdir() if p.name != "latest")
    return json.loads((run / "run.json").read_text())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_test_is_recorded_as_interrupted(pytester: pytest.Pytester, sig: int) -> None:
    marker = pytester.path / "started"
    pytester.makepyfile(prog=PROG, test_hang=HANGS.format(marker=str(marker)))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collab-out=out"],
                            cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the test never got going"
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    tests = _run_json(pytester.path)["tests"]
    first = next(v for k, v in tests.items() if k.endswith("::test_first"))
    hung = next(v for k, v in tests.items() if k.endswith("::test_hangs"))
    assert first["outcome"] == "passed" and "reason" not in first, out
    assert hung["outcome"] == "interrupted", out
    assert "KeyboardInterrupt" in hung["reason"] or "signal" in hung["reason"]
    assert hung["logs"].startswith("logs/") and hung["lease_wait_s"] >= 0


OUTCOMES = """
import pytest

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup broke")

@pytest.mark.devices(rpi=1)
def test_passes(collab):
    pass

@pytest.mark.devices(rpi=1)
def test_fails(collab):
    assert 1 == 2, "one is not two"

@pytest.mark.devices(rpi=1)
def test_errors(collab, broken_setup):
    pass

@pytest.mark.devices(rpi=1)
def test_skips(collab):
    pytest.skip("no camera on this lab")

@pytest.mark.devices(jetson=9)
def test_never_fits(collab):
    pass
"""


def test_each_outcome_with_its_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_outcomes=OUTCOMES)
    result = pytester.runpytest("--collab-out=out")
    result.assert_outcomes(passed=1, failed=1, errors=1, skipped=2)
    tests = {k.split("::")[-1]: v for k, v in _run_json(pytester.path)["tests"].items()}
    assert {k: v["outcome"] for k, v in tests.items()} == {
        "test_passes": "passed", "test_fails": "failed", "test_errors": "error",
        "test_skips": "skipped", "test_never_fits": "skipped"}
    assert "reason" not in tests["test_passes"]
    assert "one is not two" in tests["test_fails"]["reason"]
    assert "setup broke" in tests["test_errors"]["reason"]
    assert "no camera on this lab" in tests["test_skips"]["reason"]
    assert "jetson" in tests["test_never_fits"]["reason"]
    assert len(tests["test_fails"]["reason"].splitlines()) <= 15
    assert tests["test_passes"]["lease_wait_s"] == 0 or tests["test_passes"]["lease_wait_s"] < 5
    assert tests["test_passes"]["logs"] == "logs/" + tests["test_passes"]["logs"].split("/", 1)[1]
    for name, entry in tests.items():  # the contract's fields, also for tests skipped before setup
        assert entry["lease_wait_s"] >= 0 and entry["logs"].startswith("logs/"), name


def test_ctrl_c_under_xdist_records_the_running_test_as_interrupted(pytester: pytest.Pytester) -> None:
    """Ctrl-C reaches the whole process group: controller and workers."""
    import os

    pytest.importorskip("xdist")
    marker = pytester.path / "started"
    pytester.makepyfile(prog=PROG, test_hang=HANGS.format(marker=str(marker)))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collab-out=out",
                             "-n", "1"], cwd=pytester.path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the test never got going"
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    tests = _run_json(pytester.path)["tests"]
    outcomes = {k.split("::")[-1]: v["outcome"] for k, v in tests.items()}
    assert outcomes == {"test_first": "passed", "test_hangs": "interrupted"}, out


def _report(when: str, outcome: str, longrepr=None):
    from types import SimpleNamespace

    return SimpleNamespace(when=when, outcome=outcome, passed=outcome == "passed", failed=outcome == "failed",
                           skipped=outcome == "skipped", longrepr=longrepr, duration=0.1)


@pytest.mark.parametrize(("phases", "expected"), [
    ([("setup", "passed"), ("call", "passed"), ("teardown", "passed")], "passed"),
    ([("setup", "passed"), ("call", "passed"), ("teardown", "failed")], "error"),
    ([("setup", "passed"), ("call", "failed"), ("teardown", "failed")], "failed"),
    ([("setup", "failed"), ("teardown", "passed")], "error"),
    ([("setup", "passed"), ("call", "skipped"), ("teardown", "passed")], "skipped"),
], ids=["passed", "teardown-broke", "call-failed-first", "setup-broke", "skipped-in-call"])
def test_first_bad_phase_decides(phases, expected) -> None:
    from pytest_collab.results.outcomes import apply_report

    info: dict = {}
    for when, outcome in phases:
        apply_report(info, _report(when, outcome, None if outcome == "passed" else f"{when} text"))
    assert info["outcome"] == expected
    assert ("reason" in info) == (expected != "passed")


def test_reason_is_trimmed_to_fifteen_lines() -> None:
    from pytest_collab.results.outcomes import apply_report

    info: dict = {}
    apply_report(info, _report("call", "failed", "\n".join(f"line {i}" for i in range(40))))
    lines = info["reason"].splitlines()
    assert lines[:15] == [f"line {i}" for i in range(15)] and "25 more lines" in lines[15]
