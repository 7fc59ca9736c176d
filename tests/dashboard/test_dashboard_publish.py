"""The pytest side of the Live page: one state file per session, never in pytest's way."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pytest_collab.dashboard.publish import LivePublisher

PROFILE = "devices:\n  - {name: d1, kind: rpi}\n  - {name: d2, kind: rpi}\n"


def test_a_lab_session_writes_its_tests_and_programs(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", lab=PROFILE)
    pytester.makepyfile(prog="import time; print('hello', flush=True); time.sleep(0.2)\n")
    pytester.makepyfile(test_lab="""
        import json, pathlib, time, pytest

        def current(run_dir):
            # the state file as a reader sees it once the writer thread caught up
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                files = list(pathlib.Path(run_dir, "live").glob("*.json"))
                state = json.loads(files[0].read_text()) if files else {}
                if state.get("programs"):
                    return state
                time.sleep(0.05)
            raise AssertionError("no program in the live state file")

        @pytest.mark.devices(rpi=1)
        def test_one(collab):
            p = collab.start("rpi", "prog.py")
            state = current(collab.run_dir)
            # seen while the test runs: it holds its device, its program is listed
            assert state["tests"]["test_lab.py::test_one"]["state"] == "running"
            assert state["programs"][0]["device"] == state["tests"]["test_lab.py::test_one"]["devices"]["rpi"][0]
            p.wait(timeout=30)

        @pytest.mark.devices(rpi=1)
        def test_two(collab_devices):
            assert False

        def test_no_lab():
            pass
    """)
    out = pytester.path / "reports"
    result = pytester.runpytest_subprocess(f"--lan={pytester.path / 'lab.yaml'}", f"--collab-out={out}")
    result.assert_outcomes(passed=2, failed=1)
    (state_file,) = (out / "latest" / "live").glob("*.json")
    state = json.loads(state_file.read_text())
    assert state_file.name == "main.json" and state["state"] == "finished"
    assert state["counts"] == {"passed": 1, "failed": 1}
    assert set(state["tests"]) == {"test_lab.py::test_one", "test_lab.py::test_two"}  # not test_no_lab
    assert state["tests"]["test_lab.py::test_two"]["state"] == "failed"
    (program,) = state["programs"]
    assert program["name"] == "prog" and "ended" in program
    assert (out / "latest" / program["log"]).is_file() and (out / "latest" / program["jsonl"]).is_file()
    assert not list(state_file.parent.glob(".*.tmp"))  # written atomically


def test_a_session_that_never_uses_the_lab_writes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess(f"--collab-out={pytester.path / 'reports'}")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "reports").exists()


def test_a_waiting_test_says_so(tmp_path: Path) -> None:
    publisher = LivePublisher(lambda: tmp_path, "r1", "gw1", "lab")
    publisher.test_waiting("t.py::test_x")
    publisher.flush()
    state = json.loads((tmp_path / "live" / "gw1.json").read_text())
    assert state["tests"]["t.py::test_x"]["state"] == "lease" and state["worker"] == "gw1"


def test_a_failing_write_never_fails_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    publisher = LivePublisher(lambda: blocker, "r1", "main", "lab")
    publisher.test_waiting("t::a")          # live/ can not be made under a file: given up quietly
    publisher.test_running("t::a", {"rpi": ["d1"]})
    publisher.test_finished("t::a", "passed", 1.0)
    assert publisher.path is None and publisher.state["counts"] == {"passed": 1}


def test_an_event_costs_well_under_a_millisecond(tmp_path: Path) -> None:
    """Measured, not assumed: a test start, its devices and its end, 300 times (the disk
    write is on the writer thread)."""
    publisher = LivePublisher(lambda: tmp_path, "r1", "main", "lab")
    t0 = time.perf_counter()
    for i in range(300):
        publisher.test_waiting(f"t::{i}")
        publisher.test_running(f"t::{i}", {"rpi": ["d1"]})
        publisher.test_finished(f"t::{i}", "passed", 0.1)
    per_event = (time.perf_counter() - t0) / 900
    print(f"live state: {per_event * 1e6:.0f} us per event")
    assert per_event < 0.001
    publisher.flush()
    state = json.loads((tmp_path / "live" / "main.json").read_text())
    assert state["counts"] == {"passed": 300} and len(state["tests"]) == 50  # bounded file


def test_xdist_workers_keep_one_file_each(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makefile(".yaml", lab=PROFILE)
    pytester.makepyfile(test_par="""
        import pytest

        @pytest.mark.devices(rpi=1)
        @pytest.mark.parametrize("n", range(4))
        def test_n(collab_devices, n):
            pass
    """)
    out = pytester.path / "reports"
    result = pytester.runpytest_subprocess("-n", "2", f"--lan={pytester.path / 'lab.yaml'}", f"--collab-out={out}")
    result.assert_outcomes(passed=4)
    states = {p.stem: json.loads(p.read_text()) for p in (out / "latest" / "live").glob("*.json")}
    assert set(states) == {"gw0", "gw1"}  # the controller runs no test, so it writes none
    assert sum(s["counts"].get("passed", 0) for s in states.values()) == 4
    assert all(s["state"] == "finished" and s["worker"] == name for name, s in states.items())
