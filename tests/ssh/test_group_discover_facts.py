"""Groups, discovery and facts against the real sshd servers."""
from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import threading
import time

import pytest

from pytest_collab.lan import discover, facts
from pytest_collab.transport.group import GroupError, map_devices, run_group
from pytest_collab.transport.ssh import connect


@pytest.fixture
def known(ssh_lab, tmp_path):
    return str(ssh_lab.known_hosts(tmp_path / "k.known_hosts"))


def test_group_one_failing_one_hanging_host_all_results_in_time(ssh_lab, known):
    good = ssh_lab.device(0, known_hosts=known)
    failing = ssh_lab.device(1, known_hosts=known)
    hanging = ssh_lab.device(2, known_hosts=known)
    with socket.socket() as sock:      # a port nobody listens on: "connection refused"
        sock.bind(("127.0.1.13", 0))
        failing.address, failing.ssh.port = "127.0.1.13", sock.getsockname()[1]
    # The hanging host: its connect never returns (a stuck driver, a dead NFS mount...).
    release = threading.Event()

    def stuck_connect(device):
        if device.name == hanging.name:
            release.wait(60)
        return connect(device, known_hosts=known, retries=0)
    start = time.monotonic()
    with pytest.raises(GroupError) as info:
        run_group([good, failing, hanging], "echo hello", timeout=2, connect=stuck_connect,
                  check=True)
    release.set()
    elapsed = time.monotonic() - start
    results = info.value.results
    assert list(results) == ["dev0", "dev1", "dev2"]
    assert results["dev0"].ok and results["dev0"].stdout.strip() == "hello"
    assert "can not connect" in results["dev1"].error
    assert "no answer within" in results["dev2"].error
    assert sorted(info.value.failed) == ["dev1", "dev2"]
    assert elapsed < 2 + 3 * 3 + 5 + 3


def test_group_command_timeout_per_host(ssh_lab, known):
    devices = [ssh_lab.device(i, known_hosts=known) for i in range(3)]
    start = time.monotonic()
    # Only dev1 (127.0.1.10) sleeps: sshd tells the command which address it answered on.
    results = run_group(devices, 'case "$SSH_CONNECTION" in *" 127.0.1.10 "*) sleep 30;; esac; '
                                 'echo done', timeout=1.5,
                        connect=lambda d: connect(d, known_hosts=known))
    assert time.monotonic() - start < 8
    assert results["dev0"].ok and results["dev2"].ok
    assert "timed out" in results["dev1"].error


def test_map_devices_keeps_order_and_bounds_workers(ssh_lab):
    devices = [ssh_lab.device(i % 3, name=f"d{i}") for i in range(6)]
    active, peak = [0], [0]
    lock = threading.Lock()

    def work(device):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.1)
        with lock:
            active[0] -= 1
        return device.name.upper()
    out = map_devices(devices, work, timeout=5, workers=2)
    assert [o.value for o in out.values()] == [f"D{i}" for i in range(6)]
    assert peak[0] == 2


def test_discovery_over_owned_loopback_range(ssh_lab):
    found = discover.discover(ssh_lab.cidr, port=ssh_lab.port, timeout=0.5)
    assert [f.address for f in found] == [s.host for s in ssh_lab.servers]
    assert all(f.banner.startswith("SSH-2.0-OpenSSH") and f.source == "probe" for f in found)
    assert discover.hosts_of("127.0.1.8/29") == [f"127.0.1.{i}" for i in range(9, 15)]
    with pytest.raises(Exception, match="at most a /16"):
        discover.hosts_of("127.0.0.0/8")


def test_discovery_ignores_non_ssh_listeners(ssh_lab):
    server = socket.socket()
    server.bind(("127.0.1.13", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def answer():
        conn, _ = server.accept()
        conn.sendall(b"HTTP/1.0 400 Bad\r\n\r\n")
        conn.close()
    threading.Thread(target=answer, daemon=True).start()
    assert discover.probe("127.0.1.13", port, timeout=1) is None
    server.close()


def test_facts_from_real_sshd_match_local_commands(ssh_lab, known):
    device = ssh_lab.device(0, known_hosts=known)
    device.python = sys.executable       # the local gathering below runs the same interpreter
    transport = connect(device)
    try:
        got = facts.gather(transport)
    finally:
        transport.close()
    uname = os.uname()
    assert got["ansible_machine"] == uname.machine == platform.machine()
    assert got["ansible_kernel"] == uname.release
    assert got["ansible_nodename"] == uname.nodename
    assert got["ansible_processor_nproc"] == int(subprocess.check_output(["nproc"]).strip())
    with open("/proc/meminfo") as handle:
        mem_kib = int(handle.readline().split()[1])
    assert got["ansible_memtotal_mb"] == mem_kib // 1024
    assert got["ansible_python_version"] == platform.python_version()
    assert "/" in [m["mount"] for m in got["ansible_mounts"]]
    local = facts.gather_local(python=sys.executable)
    # what moves on its own, and what other users of this shared machine add and remove
    # (interfaces, loop devices): test_facts_ansible.py compares those with Ansible's
    volatile = {"ansible_uptime_seconds", "ansible_loadavg", "ansible_memfree_mb", "ansible_memory_mb",
                "ansible_swapfree_mb", "ansible_mounts", "ansible_date_time", "collab_memavailable_mb",
                "collab_disk_free_gb", "collab_temperatures_c", "collab_temperature_max_c", "ansible_interfaces",
                "ansible_all_ipv4_addresses", "ansible_all_ipv6_addresses", "ansible_locally_reachable_ips",
                "ansible_devices", "ansible_device_links"}
    volatile |= {k for k, v in {**got, **local}.items() if isinstance(v, dict) and "device" in v}   # per interface
    assert {k: v for k, v in got.items() if k not in volatile} == \
        {k: v for k, v in local.items() if k not in volatile}
    assert len(set(got) - volatile) > 60
