"""Wrapper overhead: its own CPU (% of one core) sampling an idle 5-process tree.

Side by side, at each rate, the same tree shape is watched by a naive psutil loop
(children(recursive=True) + cpu_times/memory_info/io_counters/num_ctx_switches per
process per sample, one JSON line out), and the ratio is printed. Both monitors run at
the same time, so machine load hits them alike. CPU is read from /proc/<pid>/stat
(utime+stime of the monitor itself, not its children).

    python benchmarks/bench_wrapper.py [--seconds 10] [--rates 10 100]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[1]
TREE = ("import subprocess, time\n"
        "kids = [subprocess.Popen(['sleep', '600']) for _ in range(4)]\n"
        "time.sleep(600)\n")
TICK = os.sysconf("SC_CLK_TCK")


def own_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` itself (all its threads), never of its children.

    ``/proc/<pid>/task/*/schedstat`` counts nanoseconds; ``/proc/<pid>/stat`` (utime +
    stime, 10 ms ticks) is the fallback, too coarse for 0.1 % over 10 s.
    """
    try:
        total = 0
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid), "rb") as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        with open("/proc/%d/stat" % pid, "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, children excluded


def psutil_loop(root: int, hz: float) -> None:
    """The naive monitor being compared against (runs in its own process)."""
    import psutil
    interval = 1.0 / hz
    out = sys.stdout
    while True:
        t0 = time.monotonic()
        try:
            top = psutil.Process(root)
            procs = [top] + top.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        v = dict.fromkeys(("cpu_user_s", "cpu_system_s", "rss_bytes", "read_bytes",
                           "write_bytes", "ctx_voluntary", "ctx_involuntary"), 0.0)
        for p in procs:
            try:
                cpu, mem, io, ctx = p.cpu_times(), p.memory_info(), p.io_counters(), p.num_ctx_switches()
            except psutil.Error:
                continue
            v["cpu_user_s"] += cpu.user
            v["cpu_system_s"] += cpu.system
            v["rss_bytes"] += mem.rss
            v["read_bytes"] += io.read_bytes
            v["write_bytes"] += io.write_bytes
            v["ctx_voluntary"] += ctx.voluntary
            v["ctx_involuntary"] += ctx.involuntary
        v["procs"] = len(procs)
        out.write(json.dumps({"k": "m", "t": time.time(), "pid": root, "v": v}) + "\n")
        out.flush()
        time.sleep(max(0.0, interval - (time.monotonic() - t0)))


def tree_pids(root: int) -> List[int]:
    """Processes in the tree under ``root`` (itself included)."""
    seen: List[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        seen.append(pid)
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                todo.extend(int(p) for p in f.read().split())
        except OSError:
            pass
    return seen


def wait_tree(root: int, want: int, timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while len(tree_pids(root)) < want:
        if time.monotonic() > end:
            raise SystemExit("tree of %d did not start" % want)
        time.sleep(0.05)


def measure(hz: float, seconds: float, with_psutil: bool) -> "tuple[float, Optional[float]]":
    """% of one core used by the wrapper and (if available) by the psutil loop."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs: List[subprocess.Popen] = []
    orphans: List[int] = []  # the unwrapped tree's children: nobody else ends them
    try:
        wrapper = subprocess.Popen(
            [sys.executable, "-m", "pytest_collab.wrapper", "--hz", str(hz), "--grace", "1",
             "--no-stdin-watch", "--", sys.executable, "-c", TREE],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
        procs.append(wrapper)
        wait_tree(wrapper.pid, 6)  # the wrapper + its 5-process tree
        loop = None
        if with_psutil:
            tree = subprocess.Popen([sys.executable, "-c", TREE])
            procs.append(tree)
            wait_tree(tree.pid, 5)
            orphans = tree_pids(tree.pid)[1:]
            loop = subprocess.Popen([sys.executable, __file__, "--psutil-loop", str(tree.pid), str(hz)],
                                    stdout=subprocess.DEVNULL)
            procs.append(loop)
        time.sleep(1.0)  # both past their imports
        t0 = time.monotonic()
        w0 = own_cpu_s(wrapper.pid)
        l0 = own_cpu_s(loop.pid) if loop else 0.0
        time.sleep(seconds)
        wall = time.monotonic() - t0
        w_pct = 100.0 * (own_cpu_s(wrapper.pid) - w0) / wall
        l_pct = 100.0 * (own_cpu_s(loop.pid) - l0) / wall if loop else None
        return w_pct, l_pct
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        for pid in orphans:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--psutil-loop":
        psutil_loop(int(sys.argv[2]), float(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="measuring time per rate (default: 10)")
    ap.add_argument("--rates", type=float, nargs="+", default=[10.0, 100.0], help="Hz (default: 10 100)")
    args = ap.parse_args()
    try:
        import psutil  # noqa: F401
        with_psutil = True
    except ImportError:
        with_psutil = False
        print("psutil not installed: wrapper numbers only")
    print("idle tree of 5 processes, %.0f s per rate, %% of one core (own CPU only)" % args.seconds)
    print("%6s  %10s  %10s  %8s" % ("hz", "wrapper", "psutil", "ratio"))
    for hz in args.rates:
        w, p = measure(hz, args.seconds, with_psutil)
        ratio = "%7.1fx" % (p / w) if p is not None and w > 0 else "-"
        print("%6g  %9.3f%%  %10s  %8s" % (hz, w, "%9.3f%%" % p if p is not None else "-", ratio), flush=True)


if __name__ == "__main__":
    main()
