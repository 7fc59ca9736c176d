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
    assert set(metrics["device"]) == {"rpi-1"} and set(metrics["program"]) == {"prog"}
    assert metrics["test"].iloc[0].endswith("test_dies.py::test_dies")
    assert (metrics["metric"] == "rss_bytes").sum() >= 10        # ~1.5 s at 20 Hz, all kept
    assert (run / "run.json").is_file()
    again = subprocess.run([sys.executable, "-m", "pytest_collab", "recover", str(run)],
                           capture_output=True, text=True, timeout=60)
    assert "nothing to recover" in again.stdout


CRASHER = """
import json, sys
for i in range(int(sys.argv[1])):
    print("COLLAB_RESULT " + json.dumps({"step": i, "value": i * 1.5}), flush=True)
raise SystemExit("crashed after the results")
"""

CRASH_TEST = """
import pytest

@pytest.mark.devices(rpi=1)
def test_crashes(collab):
    p = collab.start("rpi", "crasher.py", 5)
    p.wait(timeout=60)                 # raises ProgramFailed: nothing recorded by the test
    for row in p.results():
        collab.record(**row)

@pytest.mark.devices(rpi=1)
def test_passes(collab):
    p = collab.start("rpi", "crasher.py", 2)
    p.wait(timeout=60, check=False)
    for row in p.results():
        collab.record(**row)           # claimed: not doubled
"""


def _git_init(path) -> str:
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty",
                    "-m", "x"], cwd=path, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True).stdout.strip()


def test_program_that_crashes_after_n_results_keeps_n_rows(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(crasher=CRASHER, test_crash=CRASH_TEST)
    sha = _git_init(pytester.path)
    result = pytester.runpytest("--collab-out=out")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*5 result row(s) printed by programs of tests that did not pass*"])
    import pandas as pd

    run = next(p for p in (pytester.path / "out").iterdir() if p.name != "latest")
    rows = pd.read_parquet(run / "results.parquet")
    crashed = rows[rows["test"].str.endswith("::test_crashes")]
    assert sorted(crashed["step"]) == [0, 1, 2, 3, 4]
    assert set(crashed["source"]) == {"program"} and set(crashed["program"]) == {"crasher"}
    passed = rows[rows["test"].str.endswith("::test_passes")]
    assert sorted(passed["step"]) == [0, 1] and set(passed["source"]) == {"record"}
    for column in ("device", "arch", "git_sha"):   # provenance on every row
        assert rows[column].notna().all(), column
    assert set(rows["device"]) == {"rpi-1"} and set(rows["git_sha"]) == {sha}


def test_recover_after_sigkill_keeps_outcomes_git_profile_and_printed_rows(pytester: pytest.Pytester) -> None:
    marker = pytester.path / "printed"
    pytester.makepyfile(prog="import json, time\nprint('COLLAB_RESULT ' + json.dumps({'step': 7}), flush=True)\n"
                             "print('READY', flush=True)\ntime.sleep(600)\n",
                        test_two=f"""
import pathlib, time, pytest

@pytest.mark.devices(rpi=1)
def test_done(collab):
    collab.record(value=1)

@pytest.mark.devices(rpi=1)
def test_dies(collab):
    collab.start("rpi", "prog.py", ready="READY")
    time.sleep(0.5)
    pathlib.Path({str(marker)!r}).write_text("x")
    time.sleep(600)
""")
    _git_init(pytester.path)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collab-out=out"],
                            cwd=pytester.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    run = next(p for p in (pytester.path / "out").iterdir() if p.name != "latest")
    # the next session says a run needs recovering
    again = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collab-out=out",
                            "-q", "test_two.py::test_done"], cwd=pytester.path, capture_output=True,
                           text=True, timeout=120)
    assert f"collab recover {run}" in again.stdout, again.stdout
    done = subprocess.run([sys.executable, "-m", "pytest_collab", "recover", str(run)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    import json

    import pandas as pd

    info = json.loads((run / "run.json").read_text())
    assert info["recovered"] is True and len(info["git"]["commit"]) == 40
    assert info["profile"]["name"] == "local" and info["settings"]["out"] == "out"
    outcomes = {k.split("::")[-1]: v["outcome"] for k, v in info["tests"].items()}
    assert outcomes == {"test_done": "passed", "test_dies": "interrupted"}
    rows = pd.read_parquet(run / "results.parquet")
    assert sorted(rows["value"].dropna()) == [1] and list(rows["step"].dropna()) == [7]
    assert not (run / ".parts").exists()


SAMPLER = "import time\nprint('READY', flush=True)\ntime.sleep(float(__import__('sys').argv[1]))\n"

KILLED_WORKER = """
import os, signal, time, pytest

@pytest.mark.devices(rpi=1)
@pytest.mark.parametrize("n", range(4))
def test_sample(collab, n):
    p = collab.start("rpi", "sampler.py", 1.5, ready="READY")
    p.wait(timeout=60)
    collab.record(n=n)
    if n == 1:
        os.kill(os.getpid(), signal.SIGKILL)    # kill -9 of this xdist worker, parts still open
"""


def test_kill_9_of_an_xdist_worker_loses_no_metric_row(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(sampler=SAMPLER, test_killed=KILLED_WORKER)
    result = pytester.runpytest_subprocess("-n", "2", "--collab-out=out", "--collab-hz=20", "-p", "no:randomly")
    result.stdout.fnmatch_lines(["*died mid-run*rebuilt from the raw logs*"])
    import json

    import pandas as pd

    run = next(p for p in (pytester.path / "out").iterdir() if p.name != "latest")
    metrics = pd.read_parquet(run / "metrics.parquet")
    measured = 0  # every metric value any wrapper wrote to its raw log
    for raw in (run / "logs").rglob("*.jsonl"):
        for line in raw.read_text().splitlines():
            obj = json.loads(line)
            measured += len(obj.get("v", {})) if obj.get("k") == "m" else 0
    assert measured > 0 and len(metrics) == measured
    assert metrics["test"].nunique() == 4
    results = pd.read_parquet(run / "results.parquet")
    assert sorted(results["n"]) == [0, 1, 2, 3]
    info = json.loads((run / "run.json").read_text())
    killed = next(v for k, v in info["tests"].items() if k.endswith("[1]"))
    assert killed["outcome"] == "error" and "crashed" in killed["reason"]
    assert not (run / ".parts").exists()


def test_recover_leaves_a_run_that_is_still_going_alone(tmp_path) -> None:
    import json
    import socket

    from pytest_collab.errors import RunDataError
    from pytest_collab.results.recover import recover_run, unfinished_runs

    run = tmp_path / "20260101-000000-abcdef"
    (run / ".parts").mkdir(parents=True)
    header = run / ".parts" / "run-header.json"
    header.write_text(json.dumps({"run_id": run.name, "host": socket.gethostname(), "pid": os.getpid()}))
    assert unfinished_runs(tmp_path) == []
    with pytest.raises(RunDataError, match=f"still going .*pid {os.getpid()}"):
        recover_run(run)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    header.write_text(json.dumps({"run_id": run.name, "host": socket.gethostname(), "pid": dead.pid}))
    assert unfinished_runs(tmp_path) == [run]
    assert any("run.json: rebuilt" in line for line in recover_run(run))
