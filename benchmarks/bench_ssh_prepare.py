"""Per-device preparation on an SSH lab: connect and sync, one device after the other
against side by side (``pytest_collab.runtime.parallel.each``, what the session does).

Several real ``sshd`` on loopback addresses 127.0.2.x (throwaway keys, as in
tests/ssh/conftest.py), one ProcessRuntime per device; each measured step is what a test
pays before its body on a fresh run: SSH connect, then the device packages and a test
case folder synced (``--case``, default testcases/link_baseline). Rounds interleave both
ways; medians. Run: ``.venv/bin/python benchmarks/bench_ssh_prepare.py [--devices 1 2 4 8]``.

Loopback has no latency, so each step is CPU (ssh crypto, tar) on the controller's own
cores: side by side can then only win what the serial order leaves idle. On a real lab
every step also waits on the network, which is what overlapping saves.
"""
from __future__ import annotations

import argparse
import getpass
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from ssh.conftest import SSHD, SSHLab, SSHServer, _common_free_port, _keygen, _start  # noqa: E402

from pytest_collab.runtime.parallel import each  # noqa: E402


def start_lab(root: Path, count: int) -> SSHLab:
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    hosts = tuple(f"127.0.2.{10 + i}" for i in range(count))
    client_key = root / "client_key"
    authorized = root / "authorized_keys"
    authorized.write_text(_keygen(client_key) + "\n")
    lab = SSHLab(root=root, client_key=client_key, user=getpass.getuser(), port=_common_free_port(hosts))
    for i, host in enumerate(hosts):
        key = root / f"host{i}_key"
        server = SSHServer(name=f"bench{i}", host=host, port=lab.port, host_key=key, host_pub=_keygen(key))
        lab.servers.append(server)
        _start(root, server, authorized)
    return lab


def prepare_one(device, known: Path, case: Path, workdir: Path) -> object:
    """What one device costs before a test: connect, then the sync of packages and case."""
    import dataclasses

    from pytest_collab.runtime.process import ProcessRuntime
    from pytest_collab.transport.ssh import connect

    device = dataclasses.replace(device, workdir=str(workdir / device.name))
    transport = connect(device, known_hosts=str(known))
    runtime = ProcessRuntime(device, transport, f"bench-{uuid.uuid4().hex[:8]}")
    runtime.prepare(case)
    return transport


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--case", type=Path, default=ROOT / "testcases" / "link_baseline")
    args = parser.parse_args()
    if SSHD is None:
        print("sshd not installed (apt-get install openssh-server)")
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-ssh-") as tmp:
        root = Path(tmp)
        lab = start_lab(root, max(args.devices))
        known = lab.known_hosts(root / "known_hosts")
        devices = [lab.device(i) for i in range(len(lab.servers))]
        times: dict[tuple[int, str], list[float]] = {}
        try:
            def run(count: int, way: str) -> float:
                chosen = devices[:count]
                step = lambda d: prepare_one(d, known, args.case.resolve(), root / "work")  # noqa: E731
                start = time.monotonic()
                transports = [step(d) for d in chosen] if way == "serial" else each(chosen, step)
                seconds = time.monotonic() - start
                for t in transports:
                    t.close()
                return seconds

            run(1, "serial")  # warm-up: imports, first handshake
            for _ in range(args.rounds):
                for count in args.devices:
                    for way in ("serial", "parallel"):
                        times.setdefault((count, way), []).append(run(count, way))
        finally:
            for server in lab.servers:
                if server.proc is not None:
                    server.proc.terminate()
                    server.proc.wait(5)
    one = statistics.median(times[(min(args.devices), "parallel")])
    print(f"connect + sync of {args.case.name} and the device packages; median of {args.rounds} "
          f"interleaved rounds; {os.cpu_count()} cores")
    print(f"{'devices':>8} {'serial s':>9} {'parallel s':>11} {'speed-up':>9} {'parallel x one':>15}")
    for count in args.devices:
        serial = statistics.median(times[(count, "serial")])
        parallel = statistics.median(times[(count, "parallel")])
        print(f"{count:>8} {serial:>9.2f} {parallel:>11.2f} {serial / parallel:>8.2f}x {parallel / one:>15.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
