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


# ---------------------------------------------------------------- a lost lock aborts its test
LOSER = """
import pathlib, time, pytest

@pytest.mark.devices(rpi=1)
def test_holds(collab):
    p = collab.start("rpi", "prog.py", ready="READY")
    pathlib.Path({marker!r}).write_text("held")
    p.wait(timeout=60)          # returns once the lost lease stopped the program
    time.sleep(1)
"""


def test_deleting_the_lease_folder_aborts_the_holder(pytester: pytest.Pytester) -> None:
    import shutil

    marker = pytester.path / "held"
    (pytester.path / "lab.yaml").write_text(PROFILE)
    pytester.makepyfile(prog="import time\nprint('READY', flush=True)\ntime.sleep(600)\n",
                        test_loser=LOSER.format(marker=str(marker)))
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--lan=lab.yaml",
                             "--collab-out=out", "-q"], cwd=pytester.path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the test never got going"
        shutil.rmtree(pytester.path / "lab.leases")
        second = acquire(load_profile(str(pytester.path / "lab.yaml"), pytester.path),
                         Constraint({"rpi": 2}), owner_info("intruder"), timeout=5)  # the device looks free
        out, _ = proc.communicate(timeout=60)
        second.release()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, out
    assert "lease of rpi-2 lost: lock file" in out and ("was deleted" in out or "was replaced" in out), out
    assert "1 failed" in out
    run = next(p for p in (pytester.path / "out").iterdir() if p.name != "latest")
    test = next(iter(json.loads((run / "run.json").read_text())["tests"].values()))
    assert test["outcome"] == "failed" and "LeaseLost" in test["reason"]


# ---------------------------------------------------------------- etcd: several controllers
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def etcd(tmp_path: Path):
    """A real etcd on loopback ports with a temporary data folder, stopped afterwards."""
    import shutil
    import urllib.request

    from services import missing

    if shutil.which("etcd") is None:
        missing("etcd is not installed (apt-get install etcd-server)")
    client, peer = _free_port(), _free_port()
    url = f"http://127.0.0.1:{client}"
    log = tmp_path / "etcd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["etcd", "--name", "collab-test", "--data-dir", str(tmp_path / "etcd-data"),
             "--listen-client-urls", url, "--advertise-client-urls", url,
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"collab-test=http://127.0.0.1:{peer}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                    if b"true" in r.read():
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                missing(f"etcd did not come up: {log.read_text()[-1500:]}")
            time.sleep(0.2)
        yield f"etcd://127.0.0.1:{client}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


CONTROLLER = """
import json, pathlib, time, pytest

@pytest.mark.devices(rpi=2)
@pytest.mark.parametrize("i", range(2))
def test_hold(collab, i):
    start = time.time()
    time.sleep(1.0)
    with open({log!r}, "a") as fh:
        fh.write(json.dumps({{"who": {who!r}, "start": start, "end": time.time()}}) + "\\n")
"""


def test_two_controllers_contend_through_etcd(etcd: str, tmp_path: Path) -> None:
    """Two checkouts (two controllers, separate lock folders) share a lab only through etcd."""
    log = tmp_path / "holds.jsonl"
    procs = []
    for who in ("ctl-a", "ctl-b"):
        root = tmp_path / who
        root.mkdir()
        (root / "lab.yaml").write_text(PROFILE)
        (root / "test_ctl.py").write_text(CONTROLLER.format(log=str(log), who=who))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--lan=lab.yaml",
             f"--collab-leases={etcd}/labs", "--collab-out=out", "-q", "-s"],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    holds = sorted((json.loads(line) for line in log.read_text().splitlines()), key=lambda h: h["start"])
    assert len(holds) == 4 and {h["who"] for h in holds} == {"ctl-a", "ctl-b"}
    for before, after in zip(holds, holds[1:]):
        assert before["end"] <= after["start"], f"overlap: {before} and {after}"
    joined = "\n".join(outs)
    assert "collab: waiting for" in joined and "held by" in joined and "since" in joined
    waits = [t["lease_wait_s"] for root in ("ctl-a", "ctl-b")
             for run in (tmp_path / root / "out").iterdir() if run.name != "latest"
             for t in json.loads((run / "run.json").read_text())["tests"].values()]
    assert max(waits) >= 0.5


ETCD_HOLDER = """
import sys, time
from pathlib import Path
from pytest_collab.lan.profile import load_profile
from pytest_collab.leases import backend_for
from pytest_collab.leases.core import acquire_from, owner_info
from pytest_collab.select import Constraint
lan = load_profile(sys.argv[1], Path(sys.argv[1]).parent)
backend = backend_for(sys.argv[2] + "?ttl=2", lan)
lease = acquire_from(backend, lan, Constraint({"rpi": 2}), owner_info("holder-run", "h::t"), timeout=10)
print("HELD", ",".join(lease.names), flush=True)
time.sleep(120)
"""


def test_etcd_lease_dies_with_its_process(etcd: str, profile: Path) -> None:
    from pytest_collab.leases import backend_for
    from pytest_collab.leases.core import LeaseTimeout as CoreTimeout
    from pytest_collab.leases.core import acquire_from, list_from

    lan = load_profile(str(profile), profile.parent)
    holder = subprocess.Popen([sys.executable, "-c", ETCD_HOLDER, str(profile), etcd],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().split() == ["HELD", "rpi-1,rpi-2"]
        time.sleep(3)  # beyond the 2 s TTL: the holder's keep-alives keep it
        backend = backend_for(etcd, lan)
        rows = {r["device"]: r for r in list_from(backend, lan)}
        assert rows["rpi-1"]["busy"] and rows["rpi-1"]["run_id"] == "holder-run"
        with pytest.raises(CoreTimeout, match=f"pid {holder.pid}, run_id holder-run"):
            acquire_from(backend, lan, Constraint({"rpi": 1}), timeout=0.5)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        killed = time.monotonic()
        lease = acquire_from(backend, lan, Constraint({"rpi": 2}), owner_info("next"), timeout=30)
        took = time.monotonic() - killed
    finally:
        if holder.poll() is None:
            holder.kill()
    assert took < 6, f"{took:.1f}s: the dead holder's TTL (2 s) should have freed the devices"
    lost_lease = lease  # a key deleted behind its back: the lease notices
    backend.etcd.call("/v3/kv/deleterange", {"key": __import__("base64").b64encode(
        (backend.prefix + "rpi-1").encode()).decode()})
    assert "rpi-1" in (lost_lease.check() or "")
    lease.release()
    assert not any(r["busy"] for r in list_from(backend, lan))


def test_local_lab_leases_are_per_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two checkouts never wait for each other's virtual devices; one checkout's runs do."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    one, two = tmp_path / "checkout-1", tmp_path / "checkout-2"
    for root in (one, two):
        (root / "network_profiles").mkdir(parents=True)
        (root / "network_profiles" / "local.yaml").symlink_to(Path(load_profile("local", root).path))
    lan_one, lan_two = load_profile("local", one), load_profile("local", two)
    assert lease_dir_for(lan_one, one) != lease_dir_for(lan_two, two)
    assert lease_dir_for(lan_one, one) == lease_dir_for(lan_one, one / "network_profiles" / "..")
    with acquire(lan_one, Constraint({"rpi": 4}), lease_dir=lease_dir_for(lan_one, one)):
        other = acquire(lan_two, Constraint({"rpi": 4}), lease_dir=lease_dir_for(lan_two, two), timeout=1)
        other.release()
        with pytest.raises(LeaseTimeout):
            acquire(lan_one, Constraint({"rpi": 1}), lease_dir=lease_dir_for(lan_one, one), timeout=0.3)
