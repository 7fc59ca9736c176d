"""Dead links are noticed within --collab-link-timeout, and nothing is left on the device.

A real sshd runs in a network namespace behind a veth link (``netns_sshd``); the test
cuts the link (DROP both ways, no RST, no FIN: what a pulled cable or a dead Wi-Fi looks
like) in the middle of a command and in the middle of a sync.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from pytest_collab.errors import TransportError

LINK_TIMEOUT = 3.0

LONG_PROGRAM = """
import sys, time
from pathlib import Path
Path(sys.argv[1]).write_text("started")
print("READY", flush=True)
for i in range(600):
    print("tick", i, flush=True)
    time.sleep(0.5)
"""

# When the test body ended (wall clock), written by the inner session's conftest.
STAMP_CONFTEST = """
from pathlib import Path

def pytest_runtest_makereport(item, call):
    if call.when == "call":
        Path({stamp!r}).write_text(repr(call.stop))
"""

LONG_TEST = """
import pytest

@pytest.mark.devices(rpi=1)
def test_long(collab):
    prog = collab.start("rpi", "prog.py", {marker!r}, ready="READY")
    prog.wait(timeout=120)
"""


def _remote_pids(needle: str) -> list[int]:
    """Processes whose command line holds ``needle`` (the "device" is this machine)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


def _wait_gone(needle: str, within: float) -> list[int]:
    deadline = time.monotonic() + within
    while (left := _remote_pids(needle)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _profile(tmp_path: Path, entry: dict) -> Path:
    path = tmp_path / "cutlab.yaml"
    path.write_text(yaml.safe_dump({"name": "cutlab", "controller": {"name": "c", "address": "127.0.0.1"},
                                    "devices": [entry]}))
    return path


def test_link_cut_mid_command_errors_within_bound_and_leaves_nothing(netns_sshd, ssh_lab, tmp_path):
    case = tmp_path / "case"
    case.mkdir()
    marker = case / "started.txt"
    (case / "prog.py").write_text(LONG_PROGRAM)
    (case / "test_long.py").write_text(LONG_TEST.format(marker=str(marker)))
    stamp = tmp_path / "call_ended"
    (case / "conftest.py").write_text(STAMP_CONFTEST.format(stamp=str(stamp)))
    entry = netns_sshd.entry(lab=ssh_lab, kind="rpi")
    entry.update(python=sys.executable, workdir=str(tmp_path / "device"))
    profile = _profile(tmp_path, entry)
    inner = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(case), f"--lan={profile}",
         f"--collab-link-timeout={LINK_TIMEOUT:g}", f"--collab-out={tmp_path / 'out'}"],
        cwd=case, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while not marker.exists() and inner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), inner.communicate(timeout=30)[0][-3000:]
        time.sleep(1.0)
        assert _remote_pids(str(marker)), "the program is not running on the device"
        netns_sshd.netns.cut()
        cut, cut_wall = time.monotonic(), time.time()
        out, _ = inner.communicate(timeout=60)
        noticed = float(stamp.read_text()) - cut_wall
    finally:
        if inner.poll() is None:
            inner.kill()
    # The test body ends with an ERROR naming the device and the dead link, within the bound.
    assert inner.returncode == 1, out[-3000:]
    assert "1 error" in out and "link lost" in out and "cut0" in out, out[-3000:]
    assert noticed < LINK_TIMEOUT + 3, f"took {noticed:.1f} s\n{out[-3000:]}"
    # The wrapper saw its heartbeats stop and ended the program: nothing left behind
    # (heartbeat bound + the wrapper's 5 s grace + slack).
    left = _wait_gone(str(marker), LINK_TIMEOUT + 8)
    assert not left, f"still running on the device: {left}"
    print(f"cut -> test body ended: {noticed:.1f} s; device clean {time.monotonic() - cut:.1f} s after the cut")
    print(out[-1500:])


def test_link_cut_mid_sync_fails_within_bound_and_remote_tar_ends(netns_sshd, ssh_lab, tmp_path):
    from pytest_collab.lan.profile import Device
    from pytest_collab.transport.ssh import SSHTransport
    from pytest_collab.transport.ssh_stream import sync_tar, sync_timeout

    netns_sshd.netns.shape("1mbit")                  # 400 kB take about 3 s to go in
    src = tmp_path / "src"
    src.mkdir()
    size = 400_000
    (src / "blob.bin").write_bytes(os.urandom(size))
    remote = tmp_path / "remote-sync-target"
    entry = netns_sshd.entry(lab=ssh_lab)
    transport = SSHTransport(Device.from_dict(entry), link_timeout=LINK_TIMEOUT)
    transport.open()
    outcome: dict[str, object] = {}

    def sync() -> None:
        try:
            outcome["sent"] = sync_tar(transport, src, str(remote))
        except TransportError as exc:
            outcome["error"] = exc
        outcome["ended"] = time.monotonic()

    worker = threading.Thread(target=sync, daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while not _remote_pids(str(remote)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _remote_pids(str(remote)), "the remote tar never started"
    time.sleep(0.5)
    netns_sshd.netns.cut()
    cut = time.monotonic()
    worker.join(LINK_TIMEOUT + 10)
    assert not worker.is_alive(), "sync_tar still blocked on a dead link"
    assert "error" in outcome, outcome
    assert "link lost" in str(outcome["error"]) and "cut0" in str(outcome["error"])
    took = float(outcome["ended"]) - cut   # type: ignore[arg-type]
    print(f"cut -> sync_tar raised: {took:.1f} s: {outcome['error']}")
    assert took <= LINK_TIMEOUT + 2
    # Later calls fail at once: the device is not re-dialled for every step.
    started = time.monotonic()
    assert "link lost" in (transport.run("true", timeout=5).error or "")
    assert time.monotonic() - started < 0.5
    # The device's tar (reading a stdin that will never end) is ended by its own timeout.
    left = _wait_gone(str(remote), sync_timeout(size) - (time.monotonic() - cut) + 6)
    assert not left, f"remote tar still running: {left}"
    print(f"remote tar gone {time.monotonic() - cut:.1f} s after the cut (bound {sync_timeout(size):g} s)")
    transport.close()


def test_a_quiet_live_link_stays_up(ssh_lab, tmp_path):
    """OpenSSH answers the keepalive: an idle live link at three times the bound stays up
    (a send-only keepalive, like paramiko's, would prove nothing either way)."""
    from pytest_collab.transport.ssh import SSHTransport

    known = ssh_lab.known_hosts(tmp_path / "kh")
    transport = SSHTransport(ssh_lab.device(0, known_hosts=str(known)), link_timeout=1.0)
    transport.open()
    time.sleep(3.5)
    result = transport.run("echo alive", timeout=10)
    transport.close()
    assert transport.lost is None and result.ok and result.stdout == "alive\n", result


def test_a_slow_live_link_is_not_declared_dead(netns_sshd, ssh_lab, tmp_path):
    """A sync that fills the send queue holds the keepalive behind it for seconds; the
    link's ACKs still say it lives, so it is not cut (only a silent link is)."""
    from pytest_collab.lan.profile import Device
    from pytest_collab.transport.ssh import SSHTransport
    from pytest_collab.transport.ssh_stream import sync_tar

    netns_sshd.netns.shape("256kbit")                # 160 kB take about 5 s to go in
    src = tmp_path / "src"
    src.mkdir()
    (src / "blob.bin").write_bytes(os.urandom(160_000))
    transport = SSHTransport(Device.from_dict(netns_sshd.entry(lab=ssh_lab)), link_timeout=1.5)
    transport.open()
    started = time.monotonic()
    assert sync_tar(transport, src, str(tmp_path / "remote")) == ["blob.bin"]
    took = time.monotonic() - started
    transport.close()
    assert transport.lost is None and took > 3, took     # slower than the bound, and alive
    assert (tmp_path / "remote" / "blob.bin").read_bytes() == (src / "blob.bin").read_bytes()
