"""Deploy time to 1, 2, 4 and 8 emulated devices (container runtime), in parallel.

An 8-device emulated lab (rpi class, 0.5 CPU, 1 GB each) is brought up on its own
bridge; the test case image is built once (warm), then one program per device is
launched and waited for until ready (an output line). Target: 8 devices in at most
1.5 times the time of one. Run: ``.venv/bin/python benchmarks/bench_deploy.py``.
"""
from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pytest_collab.deploy import Program, ProgramContext
from pytest_collab.engines import local_client
from pytest_collab.lab import down, up
from pytest_collab.profile import LAN
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

        def deploy_one(rt) -> Program:
            argv = ["python3", "/opt/collab/code/serve.py"]
            program = Program("serve", rt.device, "rpi", argv,
                              rt.launch(argv, cwd="/opt/collab/code", env={}, hz=2, name="serve"),
                              ctx, r"^READY")
            return program.wait_ready(60)

        times: dict[int, float] = {}
        for count in COUNTS:
            samples = []
            for _ in range(REPEATS):
                start = time.monotonic()
                with ThreadPoolExecutor(max_workers=count) as pool:
                    programs = list(pool.map(deploy_one, runtimes[:count]))
                samples.append(time.monotonic() - start)
                with ThreadPoolExecutor(max_workers=count) as pool:
                    list(pool.map(lambda p: p.stop(grace=1), programs))
            times[count] = statistics.median(samples)
        print(f"{'devices':>8} {'deploy s':>9} {'x one':>6}")
        for count, seconds in times.items():
            print(f"{count:>8} {seconds:>9.2f} {seconds / times[1]:>6.2f}")
        ratio = times[max(COUNTS)] / times[1]
        print(f"target: 8 devices <= 1.5x one: {'met' if ratio <= 1.5 else 'MISSED'} ({ratio:.2f}x)")
        return 0
    finally:
        for rt in runtimes:
            rt.close()
        down(lan, client=client, progress=quiet)


if __name__ == "__main__":
    sys.exit(main())
