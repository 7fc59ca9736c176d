"""Device leases across real processes: all-or-none, no overlap, owners shown, kill -9 safe."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_collab.errors import SelectionError
from pytest_collab.leases.files import LeaseTimeout, acquire, lease_dir_for, list_leases, owner_info
from pytest_collab.lan.profile import load_profile
from pytest_collab.select import Constraint

PROFILE = """
name: leaselab
devices:
  - {name: rpi-2, kind: rpi}
  - {name: rpi-1, kind: rpi}
  - {name: server-1, kind: server}
"""


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    path = tmp_path / "network_profiles" / "leaselab.yaml"
    path.parent.mkdir()
    path.write_text(PROFILE)
    return path


def test_all_or_none_owner_and_timeout_message(profile: Path) -> None:
    lan = load_profile(str(profile), profile.parent)
    assert lease_dir_for(lan) == profile.parent / "leaselab.leases"
    with acquire(lan, Constraint({"rpi": 1}), owner_info("run-a", "t::a")) as first:
        assert first.names == ["rpi-2"]  # select_devices keeps the profile's order
        second = acquire(lan, Constraint({"rpi": 1}), owner_info("run-b", "t::b"), timeout=1)
        assert second.names == ["rpi-1"]  # the free device that meets the constraint
        start = time.monotonic()
        with pytest.raises(LeaseTimeout, match=r"busy devices: rpi-1: \S+ pid %d, run_id run-b, test t::b, "
                           r"since \S+; rpi-2: \S+ pid %d, run_id run-a" % (os.getpid(), os.getpid())):
            acquire(lan, Constraint({"rpi": 1, "server": 1}), timeout=0.3)
        assert 0.3 <= time.monotonic() - start < 2
        rows = {r["device"]: r for r in list_leases(lan)}
        assert rows["rpi-1"]["busy"] and rows["rpi-1"]["run_id"] == "run-b"
        assert not rows["server-1"]["busy"]  # the failed attempt kept nothing
        second.release()
        second.release()  # twice is harmless
    assert not any(r["busy"] for r in list_leases(lan))
    with pytest.raises(SelectionError, match="has 2 device"):  # never satisfiable: no waiting
        acquire(lan, Constraint({"rpi": 3}), timeout=30)


HOLDER = """
import sys, time
from pathlib import Path
from pytest_collab.leases.files import acquire, owner_info
from pytest_collab.lan.profile import load_profile
from pytest_collab.select import Constraint
lan = load_profile(sys.argv[1], Path(sys.argv[1]).parent)
lease = acquire(lan, Constraint({"rpi": 2}), owner_info("holder-run", "holder::test"), timeout=10)
print("HELD", ",".join(lease.names), flush=True)
time.sleep(120)
"""


def test_kill_9_holder_is_taken_over_at_once(profile: Path, tmp_path: Path) -> None:
    lan = load_profile(str(profile), profile.parent)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(profile)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().split() == ["HELD", "rpi-1,rpi-2"]
        with pytest.raises(LeaseTimeout, match=f"pid {holder.pid}, run_id holder-run"):
            acquire(lan, Constraint({"rpi": 1}), timeout=0.2)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        killed = time.monotonic()
        lease = acquire(lan, Constraint({"rpi": 2}), owner_info("next-run"), timeout=30)
        took = time.monotonic() - killed
    finally:
        if holder.poll() is None:
            holder.kill()
    assert took < 1.0, f"took {took:.2f}s to take over a dead holder's lease"
    assert lease.names == ["rpi-1", "rpi-2"]
    assert {r["run_id"] for r in list_leases(lan) if r["busy"]} == {"next-run"}
    lease.release()


WORKER_TESTS = """
import json, os, time
from pathlib import Path
import pytest
from pytest_collab.leases.files import acquire, owner_info
from pytest_collab.lan.profile import load_profile
from pytest_collab.select import Constraint

PROFILE = {profile!r}
LOG = Path({log!r})

@pytest.mark.parametrize("i", range(6))
def test_hold(i, worker_id):
    lan = load_profile(PROFILE, Path(PROFILE).parent)
    with acquire(lan, Constraint({{"rpi": 2}}), owner_info("xdist", f"hold[{{i}}]"), timeout=60) as lease:
        start = time.time()
        time.sleep(0.25)
        end = time.time()
    with LOG.open("a") as fh:
        fh.write(json.dumps({{"worker": worker_id, "devices": lease.names, "start": start, "end": end}}) + "\\n")
"""


def test_two_xdist_workers_never_overlap(profile: Path, pytester: pytest.Pytester, tmp_path: Path) -> None:
    log = tmp_path / "holds.jsonl"
    pytester.makepyfile(test_hold=WORKER_TESTS.format(profile=str(profile), log=str(log)))
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=6)
    holds = sorted((json.loads(line) for line in log.read_text().splitlines()), key=lambda h: h["start"])
    assert len(holds) == 6 and {h["worker"] for h in holds} == {"gw0", "gw1"}
    assert all(h["devices"] == ["rpi-1", "rpi-2"] for h in holds)
    for before, after in zip(holds, holds[1:]):
        assert before["end"] <= after["start"], f"overlap: {before} and {after}"
