"""Emulated devices over the real SSH transport: identity, class limits, shaped bandwidth."""
from __future__ import annotations

import re
import shlex
import threading

import pytest

from pytest_collab.transport import get_transport

RECEIVER = r"""
import socket, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 5201)); srv.listen(1); print("LISTENING", flush=True)
conn, _ = srv.accept(); conn.settimeout(10)
total, t0, first = 0, None, time.monotonic()
while True:
    data = conn.recv(1 << 16)
    if not data:
        break
    now = time.monotonic()
    if now - first >= 0.5:          # skip the bucket's initial burst and slow start
        t0 = t0 or now
        total += len(data)
        t1 = now
print(f"MBIT {total * 8 / (t1 - t0) / 1e6:.2f}")
"""

SENDER = r"""
import socket, sys, time
for _ in range(50):
    try:
        s = socket.create_connection((sys.argv[1], 5201), timeout=2); break
    except OSError:
        time.sleep(0.1)
buf = b"x" * (1 << 16); end = time.monotonic() + 4
while time.monotonic() < end:
    s.sendall(buf)
s.close()
"""


# cgroup v2, else v1: "quota period" and the memory limit in bytes.
CGROUP_LIMITS = ("hostname; hostname -I; G=/sys/fs/cgroup; cat $G/cpu.max 2>/dev/null || "
                 "echo $(cat $G/cpu/cpu.cfs_quota_us) $(cat $G/cpu/cpu.cfs_period_us); "
                 "cat $G/memory.max 2>/dev/null || cat $G/memory/memory.limit_in_bytes")


def test_three_devices_reached_over_ssh(lab) -> None:
    for name, cpus, mem_mb in (("server-1", 1.5, 4096), ("jetson-1", 1, 2048), ("rpi-1", 0.5, 1024)):
        device = lab.device(name)
        transport = get_transport(device, profile_path=lab.path)
        try:
            res = transport.run(CGROUP_LIMITS, timeout=20)
        finally:
            transport.close()
        assert res.ok, res.stderr
        host, addr, cpu_max, mem_max = res.stdout.splitlines()
        assert host == name and addr.split()[0] == device.address
        quota, period = cpu_max.split()
        assert int(quota) / int(period) == pytest.approx(cpus)
        assert int(mem_max) == mem_mb * 1024 * 1024


@pytest.mark.parametrize("sender", ["rpi-1", "rpi-2"])
def test_shaped_uplink_bandwidth(lab, sender: str) -> None:
    """A 4 s TCP stream from the sender to server-1 runs at the sender's declared rate (±15%)."""
    src, dst = lab.device(sender), lab.device("server-1")
    declared = src.link["rate_mbit"]
    rx, tx = get_transport(dst, profile_path=lab.path), get_transport(src, profile_path=lab.path)
    got: dict[str, object] = {}
    try:
        recv = threading.Thread(target=lambda: got.update(
            r=rx.run(f"python3 -c {shlex.quote(RECEIVER)}", timeout=30)))
        recv.start()
        sent = tx.run(f"python3 -c {shlex.quote(SENDER)} {dst.address}", timeout=30)
        recv.join(40)
    finally:
        rx.close()
        tx.close()
    assert sent.ok, sent.stderr
    result = got["r"]
    assert result.ok, result.stderr  # type: ignore[attr-defined]
    measured = float(re.search(r"MBIT ([\d.]+)", result.stdout)[1])  # type: ignore[attr-defined]
    print(f"{sender}: declared {declared} Mbit/s, measured {measured:.1f} Mbit/s")
    assert measured == pytest.approx(declared, rel=0.15)
