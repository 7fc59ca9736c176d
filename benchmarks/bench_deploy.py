"""Deploy time to 1, 2, 4 and 8 emulated devices (container runtime), in parallel.

An 8-device emulated lab (rpi class, 0.5 CPU, 1 GB each) is brought up on its own
bridge; the test case image is built once (warm), then one program per device is
launched and waited for until ready (an output line). Target: 8 devices in at most
1.5 times the time of one. Run: ``.venv/bin/python benchmarks/bench_deploy.py``.

Deploys are CPU-bound (dockerd, containerd, a shim and runc per container, then two
Python starts), so the benchmark also prints the CPU seconds each deploy costs
(dockerd and containerd, the container's shim and the runc runs it reaped, the
container's cgroup, and this controller process; other users of shared cores are not
counted) and the floor that implies: ``count x cpu-per-deploy / cores``. When the floor is above 1.5x one
deploy's time, the target can not be met on this machine, whatever the ordering.
``cores idle`` is the share of every core's time left idle (/proc/stat) while the deploys
ran: idle time is what a better overlap could still use; near 0% the cores were the limit
(ours, or other jobs' on a shared machine). ``ours of busy`` is the deploys' CPU against
all CPU the machine spent meanwhile: below 100% other jobs took the rest of the cores.
"""
from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pytest_collab.deploy import Program, ProgramContext
from pytest_collab.containers.engines import local_client
from pytest_collab.labs import down, up
from pytest_collab.lan.profile import LAN
from pytest_collab.runtime.container import create

COUNTS = (1, 2, 4, 8)
REPEATS = 3


def bench_lan() -> LAN:
    devices = [{"name": f"bench-{i}", "kind": "rpi", "address": f"172.29.0.{10 + i}",
                "link": {"rate_mbit": 100}} for i in range(max(COUNTS))]
    return LAN.from_dict({
        "name": "bench-deploy", "emulation": {"network": "collab-bench-deploy", "subnet": "172.29.0.0/24"},
        "kinds": {"rpi": {"resources": {"cpus": 0.5, "memory_mb": 1024}}},
        "defaults": {"transport": "ssh", "arch": "amd64",
                     "ssh": {"user": "root", "key": "~/.cache/pytest-collab/emulated/id_ed25519",
                             "host_key_policy": "tofu",
                             "known_hosts": "~/.cache/pytest-collab/emulated/known_hosts"}},
        "devices": devices})


TICK = os.sysconf("SC_CLK_TCK")
CGROUP_CPU = ("/sys/fs/cgroup/cpuacct/docker/{}/cpuacct.usage",      # cgroup v1, cgroupfs driver
              "/sys/fs/cgroup/system.slice/docker-{}.scope/cpu.stat",  # v2, systemd driver
              "/sys/fs/cgroup/docker/{}/cpu.stat")                    # v2, cgroupfs driver


def _proc_cpu_s(pid: str) -> float:
    """user+system CPU of a process and of its reaped children (runc under a shim)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / TICK


def _pids(match: "callable") -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if match(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")):
                found.append(pid)
        except OSError:
            continue
    return found


def _container_cpu_s(cid: str) -> float:
    for pattern in CGROUP_CPU:
        path = Path(pattern.format(cid))
        if path.is_file():
            text = path.read_text()
            if path.name == "cpuacct.usage":
                return int(text) / 1e9
            return int(text.split("usage_usec")[1].split()[0]) / 1e6
    return 0.0


def machine_ticks() -> tuple[int, int]:
    """(idle, total) jiffies of every core (/proc/stat): the share left idle during a deploy
    is what better overlap could still use; none idle means the cores were the limit."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


def daemons_cpu_s() -> float:
    """dockerd + containerd: the engine's long-lived part (other users' calls are noise here)."""
    names = {b"dockerd", b"containerd"}
    return sum(_proc_cpu_s(p) for p in _pids(lambda argv: Path(argv[0].decode()).name.encode() in names))


def container_cpu_s(cids: list[str]) -> float:
    """Per container: its shim (with the runc runs it reaped) and everything in its cgroup."""
    want = set(cids)
    shims = _pids(lambda argv: b"containerd-shim" in argv[0] and bool(want & {a.decode() for a in argv}))
    return sum(_proc_cpu_s(p) for p in shims) + sum(_container_cpu_s(c) for c in cids)


def main() -> int:
    client = local_client()
    lan = bench_lan()
    quiet = lambda line: None  # noqa: E731
    up(lan, client=client, progress=quiet)
    work = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    case = work / "bench-deploy-case"
    case.mkdir()
    (case / "serve.py").write_text("import time\nprint('READY', flush=True)\ntime.sleep(60)\n")
    ctx = ProgramContext(run_id="bench", test="bench", log_dir=work / "logs", sink=None)
    runtimes = [create(dataclasses.replace(d, runtime="docker"), None, "bench", client=client,
                       progress=quiet) for d in lan.devices]
    try:
        for rt in runtimes:
            rt.prepare(case)  # warm: the image exists after the first, the rest are cache hits

        def deploy_one(rt) -> tuple[Program, str]:
            argv = ["python3", "/opt/collab/code/serve.py"]
            spawned = rt.launch(argv, cwd="/opt/collab/code", env={}, hz=2, name="serve")
            return Program("serve", rt.device, "rpi", argv, spawned, ctx, r"^READY").wait_ready(60), spawned.id

        cores = int(client.info().get("NCPU", 1))
        times: dict[int, float] = {}
        cpu: dict[int, float] = {}
        idle: dict[int, float] = {}
        share: dict[int, float] = {}
        for count in COUNTS:
            samples, costs, idles, shares = [], [], [], []
            for _ in range(REPEATS):
                ticks = machine_ticks()
                daemons, ours, start = daemons_cpu_s(), time.process_time(), time.monotonic()
                with ThreadPoolExecutor(max_workers=count) as pool:
                    programs, cids = zip(*pool.map(deploy_one, runtimes[:count]))
                samples.append(time.monotonic() - start)
                after = machine_ticks()
                idles.append((after[0] - ticks[0]) / max(1, after[1] - ticks[1]))
                spent = daemons_cpu_s() - daemons + time.process_time() - ours + container_cpu_s(list(cids))
                costs.append(spent / count)
                busy_s = (after[1] - ticks[1] - (after[0] - ticks[0])) / TICK
                shares.append(spent / busy_s if busy_s > 0 else 1.0)
                with ThreadPoolExecutor(max_workers=count) as pool:
                    list(pool.map(lambda p: p.stop(grace=1), programs))
            times[count], cpu[count] = statistics.median(samples), statistics.median(costs)
            idle[count], share[count] = statistics.median(idles), statistics.median(shares)
        print(f"{'devices':>8} {'deploy s':>9} {'x one':>6} {'cpu s/deploy':>13} {'floor s':>8} "
              f"{'floor x one':>12} {'cores idle':>11} {'ours of busy':>13}")
        for count, seconds in times.items():
            floor = count * cpu[count] / cores
            print(f"{count:>8} {seconds:>9.2f} {seconds / times[1]:>6.2f} {cpu[count]:>13.3f} "
                  f"{floor:>8.2f} {floor / times[1]:>12.2f} {idle[count]:>10.0%} {share[count]:>12.0%}")
        ratio = times[max(COUNTS)] / times[1]
        floor = max(COUNTS) * cpu[max(COUNTS)] / cores
        print(f"target: 8 devices <= 1.5x one: {'met' if ratio <= 1.5 else 'MISSED'} ({ratio:.2f}x); "
              f"{cores} cores, CPU floor for 8: {floor / times[1]:.2f}x one")
        print(f"target: 8 devices within 1.2x of their CPU floor: "
              f"{'met' if times[max(COUNTS)] <= 1.2 * floor else 'MISSED'} "
              f"({times[max(COUNTS)] / floor:.2f}x; the floor assumes every core is ours: "
              f"load average now {os.getloadavg()[0]:.1f} on {cores} cores)")
        top = max(COUNTS)
        print(f"8 devices against the floor at the share of the cores they got ({share[top]:.0%}, "
              f"cores idle {idle[top]:.0%}): {times[top] * share[top] / floor:.2f}x")
        return 0
    finally:
        for rt in runtimes:
            rt.close()
        down(lan, client=client, progress=quiet)


if __name__ == "__main__":
    sys.exit(main())
