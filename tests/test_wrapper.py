"""The metrics wrapper against real processes: protocol, metrics, teardown, standalone copy."""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional


from pytest_collab.wrapper import PROTOCOL_VERSION, procfs, source_dir
from pytest_collab.wrapper.sensors import Sensors

HELPERS = Path(__file__).parent / "wrapper_helpers"
MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[1]


class Wrapped:
    """A wrapper subprocess whose JSON lines are read by a thread, with deadlines."""

    def __init__(self, program: List[str], *opts: str, stdin: int = subprocess.PIPE,
                 launcher: Optional[List[str]] = None, cwd: Optional[Path] = None) -> None:
        cmd = (launcher or [sys.executable, "-m", "pytest_collab.wrapper"]) + list(opts) + ["--"] + program
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, cwd=cwd or ROOT, env=env)
        self.lines: List[dict] = []
        self._q: "queue.Queue[Optional[dict]]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._q.put(json.loads(raw))
        self._q.put(None)

    def until(self, pred: Callable[[dict], bool], timeout: float = 15.0) -> dict:
        """Read lines until one matches ``pred``; fail after ``timeout``."""
        end = time.monotonic() + timeout
        while True:
            obj = self._q.get(timeout=max(0.01, end - time.monotonic()))
            if obj is None:
                raise AssertionError("wrapper ended before the expected line: %s" % self.lines[-3:])
            self.lines.append(obj)
            if pred(obj):
                return obj

    def finish(self, timeout: float = 20.0) -> int:
        """Read to EOF and return the wrapper's exit code."""
        end = time.monotonic() + timeout
        while True:
            obj = self._q.get(timeout=max(0.01, end - time.monotonic()))
            if obj is None:
                return self.proc.wait(timeout=max(0.1, end - time.monotonic()))
            self.lines.append(obj)

    def kind(self, k: str) -> List[dict]:
        return [o for o in self.lines if o["k"] == k]

    def samples(self) -> List[Dict[str, float]]:
        return [o["v"] for o in self.kind("m")]


def helper(name: str, *args: str) -> List[str]:
    return [sys.executable, str(HELPERS / name), *args]


def alive(pid: int) -> bool:
    """Running (zombies count as gone: they hold no resources and no CPU)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(b")") + 2:][:1] not in (b"Z", b"X")


def check_protocol(w: Wrapped) -> None:
    """Shape every wrapper run must have: start first, exit last, pid on samples."""
    assert w.lines[0]["k"] == "start" and w.lines[0]["v"] == PROTOCOL_VERSION
    assert w.lines[-1]["k"] == "exit" and len(w.kind("exit")) == 1
    assert all(isinstance(o["t"], float) for o in w.lines)
    assert all(m["pid"] == w.lines[0]["pid"] for m in w.kind("m"))


def test_cpu_burn_reads_one_core() -> None:
    w = Wrapped(helper("burn.py", "2.5"), "--hz", "10")
    assert w.finish() == 0
    check_protocol(w)
    outs = [o["line"] for o in w.kind("out")]
    self_cpu, self_wall = (float(x) for x in outs[-1].split()[1:])
    # 100 % on a free core; on a machine shared with other work, the share the burner
    # itself measured (process_time / wall) is what the wrapper must read.
    share = 100.0 * self_cpu / self_wall
    start = next(i for i, o in enumerate(w.lines) if o.get("line") == "BURNING")
    burning = [o for o in w.lines[start:] if o["k"] == "m"][3:-2]  # steady part only
    assert len(burning) >= 10
    median = statistics.median(m["v"]["cpu_percent"] for m in burning)
    assert 0.7 * share <= median <= 1.3 * share, (median, share)
    assert share < 90 or 70 <= median <= 130
    cpu = burning[-1]["v"]["cpu_user_s"] - burning[0]["v"]["cpu_user_s"]
    wall = burning[-1]["t"] - burning[0]["t"]
    assert 0.7 <= 100.0 * cpu / wall / share <= 1.3, (cpu, wall, share)


def test_rss_reads_allocated_memory() -> None:
    w = Wrapped(helper("alloc.py", "200", "1.0"))
    w.until(lambda o: o["k"] == "out" and o["line"] == "READY")
    assert w.finish() == 0
    after = [o["v"]["rss_bytes"] for o in w.lines[[o.get("line") for o in w.lines].index("READY"):]
             if o["k"] == "m" and o["v"]["procs"] == 1]
    assert after and 0.85 * 200 * MiB <= max(after) <= 1.15 * 200 * MiB


def _start_tree(*opts: str, ignore_term: bool = False, stdin: int = subprocess.PIPE) -> "tuple[Wrapped, List[int]]":
    w = Wrapped(helper("tree.py", *(["--ignore-term"] if ignore_term else [])), *opts, stdin=stdin)
    pids = [int(p) for p in w.until(lambda o: o["k"] == "out" and o["line"].startswith("PIDS"))["line"].split()[1:]]
    w.until(lambda o: o["k"] == "m" and o["v"]["procs"] == 5)
    assert len(pids) == 5 and all(alive(p) for p in pids)
    return w, pids


def test_sigterm_ends_whole_tree_including_setsid_child() -> None:
    w, pids = _start_tree()
    w.proc.send_signal(signal.SIGTERM)
    assert w.finish() == 128 + signal.SIGTERM
    check_protocol(w)
    assert w.lines[-1]["signal"] == signal.SIGTERM and w.lines[-1]["code"] is None
    assert not [p for p in pids if alive(p)]


def test_stdin_eof_is_a_dead_mans_switch() -> None:
    w, pids = _start_tree()
    assert w.proc.stdin is not None
    w.proc.stdin.close()
    assert w.finish() == 128 + signal.SIGTERM
    assert not [p for p in pids if alive(p)]


def test_sigterm_ignoring_tree_is_killed_after_grace() -> None:
    w, pids = _start_tree("--grace", "1", ignore_term=True)
    sent = time.time()
    w.proc.send_signal(signal.SIGTERM)
    assert w.finish() == 128 + signal.SIGKILL
    assert w.lines[-1]["signal"] == signal.SIGKILL
    assert w.lines[-1]["t"] - sent >= 0.9  # the grace was granted first
    assert not [p for p in pids if alive(p)]


def test_orphan_left_by_exited_program_is_ended() -> None:
    # sh exits at once: its setsid'd background child is orphaned before any sample could
    # see it as sh's child; the wrapper (a child subreaper) adopts and ends it.
    w = Wrapped(["sh", "-c", "setsid sleep 60 & echo $!; exit 0"], "--grace", "1",
                stdin=subprocess.DEVNULL)
    assert w.finish() == 0
    assert w.lines[-1]["code"] == 0
    orphan = int(w.kind("out")[0]["line"])
    assert not alive(orphan)


def test_stdin_not_a_pipe_is_not_a_death_signal() -> None:
    w = Wrapped([sys.executable, "-c", "import time; time.sleep(0.6); print('done')"],
                stdin=subprocess.DEVNULL)
    assert w.finish() == 0
    assert [o["line"] for o in w.kind("out")] == ["done"]


def test_program_killed_mid_run_reports_signal_9() -> None:
    w = Wrapped(helper("burn.py", "20"))
    w.until(lambda o: o["k"] == "m")
    seen = w.until(lambda o: o["k"] == "m")
    os.kill(w.lines[0]["pid"], signal.SIGKILL)
    assert w.finish() == 128 + 9
    check_protocol(w)
    assert seen in w.kind("m") and w.lines[-1]["signal"] == 9 and w.lines[-1]["code"] is None
    assert w.lines[-1]["wall_s"] < 15


def test_output_order_non_utf8_and_result_lines() -> None:
    w = Wrapped(helper("output.py"), stdin=subprocess.DEVNULL)
    assert w.finish() == 3
    check_protocol(w)
    assert w.lines[-1]["code"] == 3 and w.lines[-1]["signal"] is None
    out = [o["line"] for o in w.kind("out") if o["s"] == "stdout"]
    err = [o["line"] for o in w.kind("out") if o["s"] == "stderr"]
    assert err == ["err %d" % i for i in range(50)]
    assert out[:50] == ["out %d" % i for i in range(50)]
    assert out[50] == "bad \ufffd\ufffd bytes"
    assert out[51:] == ['COLLAB_RESULT {"acc": 0.91}', "no newline at end"]


def test_host_network_scope_uses_host_names() -> None:
    w = Wrapped([sys.executable, "-c", "import time; time.sleep(0.5)"], "--hz", "20")
    assert w.finish() == 0
    start = w.lines[0]
    assert start["net_scope"] == "host"
    assert start["units"]["host_net_rx_bytes"] == "B" and "net_rx_bytes" not in start["units"]
    samples = w.samples()
    assert samples and all("host_net_tx_bytes" in v and "net_tx_bytes" not in v for v in samples)


def test_missing_program_exits_127() -> None:
    w = Wrapped(["/nonexistent/program"], stdin=subprocess.DEVNULL)
    assert w.finish() == 127
    check_protocol(w)
    assert "cannot start" in w.kind("out")[0]["line"]


def test_standalone_copy_imports_nothing_of_pytest_collab(tmp_path: Path) -> None:
    shutil.copytree(source_dir(), tmp_path / "collab_wrapper",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # -I -S: no site-packages, no cwd, no PYTHONPATH; pytest_collab is made unimportable.
    boot = ("import sys; sys.path.insert(0, %r); sys.modules['pytest_collab'] = None; "
            "import runpy; runpy.run_module('collab_wrapper', run_name='__main__', alter_sys=True)"
            % str(tmp_path))
    w = Wrapped([sys.executable, "-c", "print('standalone')"], "--hz", "20",
                launcher=[sys.executable, "-I", "-S", "-c", boot], cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert w.finish() == 0
    check_protocol(w)
    assert [o["line"] for o in w.kind("out")] == ["standalone"]


def test_sensors_registry_keeps_only_found_sensors(tmp_path: Path) -> None:
    reading = tmp_path / "power1_input"
    reading.write_text("2500000\n")
    fd = os.open(str(reading), os.O_RDONLY)
    calls = []

    def found(name: str):  # type: ignore[no-untyped-def]
        def read() -> Dict[str, float]:
            calls.append(name)
            return {name: int(os.pread(fd, 64, 0)) * 1e-6}
        return lambda: read

    try:
        sensors = Sensors([(lambda: None, "C", 0.0), (found("power_w.fast"), "W", 0.0),
                           (found("power_w.slow"), "W", 3600.0)])
        assert sensors.units == {"power_w.fast": "W", "power_w.slow": "W"}
        values: Dict[str, float] = {}
        reading.write_text("3000000\n")
        before = len(calls)
        sensors.read(values)
        assert values == {"power_w.fast": 3.0, "power_w.slow": 2.5}  # hourly: cached value
        assert calls[before:] == ["power_w.fast"]
        assert not Sensors([(lambda: None, "C", 0.0)])
    finally:
        os.close(fd)
    # The default set probes this machine without failing; what it found has units.
    default = Sensors()
    got: Dict[str, float] = {}
    default.read(got)
    assert set(got) == set(default.units)


def test_protocol_lines_decode_in_one_place() -> None:
    """deploy, recover and the dashboard read wrapper lines through one decoder."""
    from pytest_collab.wrapper.emit import decode

    assert decode('{"k":"m","t":1.0,"v":{}}') == {"k": "m", "t": 1.0, "v": {}}
    assert decode(b'{"k":"exit","code":0}')["k"] == "exit"
    for other in ("hello", '{"k": 3}', "[1, 2]", '{"t": 1}', '{"k":"m",'):
        assert decode(other) is None, other


def test_net_dev_bigger_than_the_first_buffer_is_read_whole(tmp_path: Path) -> None:
    """A host with hundreds of interfaces (container veths): every line counts, colons
    glued to big numbers included."""
    lines = ["Inter-|   Receive |  Transmit", " face |bytes packets|bytes packets"]
    lines += ["veth%d:%d 1 0 0 0 0 0 0 %d 1 0 0 0 0 0 0" % (i, 10**12 + i, 7 * i) for i in range(300)]
    fake = tmp_path / "dev"
    fake.write_text("\n".join(lines) + "\n")
    assert fake.stat().st_size > procfs.BUF
    net = procfs.NetDev(os.getpid())
    procfs.close(net._fd)
    net._fd = procfs.open_ro(str(fake))
    try:
        assert net.read(lambda: []) == (0, 0)  # counts start at the first read
        fake.write_text("\n".join(lines[:2] + [line.replace(":", ":5", 1) if "veth7:" in line else line
                                                for line in lines[2:]]) + "\n")
        assert net.read(lambda: []) == (5 * 10**13, 0)  # veth7: 1e12+7 became 51e12+7
    finally:
        net.close()
    assert procfs.parse_net_dev(fake.read_bytes())[1] == sum(7 * i for i in range(300))


def test_net_dev_other_layout_falls_back_to_the_line_parser() -> None:
    """A kernel printing more counters per interface (or a torn file) still sums rx/tx."""
    head = b"Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n"
    wide = head + b"".join(b"eth%d: %d 0 0 0 0 0 0 0 %d 0 0 0 0 0 0 0 99\n" % (i, 10 + i, 20 + i) for i in range(3))
    assert procfs.parse_net_dev(wide) == (33, 63)
    glued = head + b"eth0:123 0 0 0 0 0 0 0 7 0 0 0 0 0 0 0\n  lo: 5 0 0 0 0 0 0 0 6 0 0 0 0 0 0 0\n"
    assert procfs.parse_net_dev(glued) == (128, 13)
    for torn in (b"", b"Inter-|", head, head + b"eth0: 1 2 3"):
        assert procfs.parse_net_dev(torn) == (0, 0), torn


def test_sample_line_is_the_emit_line_on_a_pipe_and_in_memory() -> None:
    """The per-tick fast path writes the very bytes of the generic one (t apart)."""
    import io

    from pytest_collab.wrapper.emit import Emitter, _chunk_encoder

    values = {"cpu_percent": 12.5, "rss_bytes": 3 << 30, "temp_c.cpu": -0.1, "power_w.x": float("nan")}
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as pipe_end:
        memory = io.BytesIO()
        for stream in (pipe_end, memory):
            emitter = Emitter(stream)  # type: ignore[arg-type]
            emitter.sample(42, values)
            emitter.emit("m", pid=42, v=values)
    with os.fdopen(read_fd, "rb") as f:
        piped = f.read().splitlines()
    for fast, generic in (piped, memory.getvalue().splitlines()):
        a, b = json.loads(fast), json.loads(generic)
        assert a.pop("t") <= b.pop("t")
        assert fast.replace(fast[fast.index(b'"t":'):fast.index(b',"pid"')], b"") == \
            generic.replace(generic[generic.index(b'"t":'):generic.index(b',"pid"')], b"")
    # an encoder the C one does not match (other separators) is used as it is
    spaced = json.JSONEncoder(separators=(", ", ": ")).encode
    assert "".join(_chunk_encoder(spaced)({"a": 1}, 0)) == '{"a": 1}'


def test_orphan_of_a_double_fork_is_tracked_while_the_program_runs() -> None:
    """A grandchild orphaned before any tick could see it is found among the wrapper's own
    children (looked for about once a second) and counted in the tree."""
    w = Wrapped(["sh", "-c", "(setsid sleep 30 & echo $!); exec sleep 30"], "--grace", "1")
    orphan = int(w.until(lambda o: o["k"] == "out")["line"])
    started = w.until(lambda o: o["k"] == "m")["t"]
    seen = w.until(lambda o: o["k"] == "m" and o["v"]["procs"] == 2, timeout=10)
    assert seen["t"] - started <= 2.5
    w.proc.send_signal(signal.SIGTERM)
    w.finish()
    assert not alive(orphan)


def test_context_switches_move_after_idle_ticks() -> None:
    """Idle ticks skip the status file (schedstat unchanged); switches after them count."""
    code = ("import time; time.sleep(0.6); print('GO', flush=True)\n"
            "for _ in range(300): time.sleep(0.001)\n"
            "print('DONE', flush=True); time.sleep(0.6)")
    w = Wrapped([sys.executable, "-c", code], stdin=subprocess.DEVNULL)
    assert w.finish() == 0
    marks = [o.get("line") for o in w.lines]
    before = [o["v"]["ctx_voluntary"] for o in w.lines[:marks.index("GO")] if o["k"] == "m"]
    after = [o["v"]["ctx_voluntary"] for o in w.lines[marks.index("DONE"):] if o["k"] == "m"]
    assert len(before) >= 3 and len(after) >= 3
    assert before[-1] == before[-2]  # asleep: the same count, sampled on
    assert after[0] - before[-1] >= 300


def _tree_reads(code: str, ticks: int, gap: float = 0.1):
    """Sample a Tree over ``python -c code`` in this process: (samples, fds read per tick)."""
    from pytest_collab.wrapper.tree import Tree

    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        tree = Tree(child.pid, 10.0)
        proc = tree._procs[child.pid]
        own = {proc.stat: "stat", proc.sched: "schedstat", proc.status: "status", proc.io: "io"}
        real, reads, samples = os.pread, [], []

        def counting(fd: int, n: int, offset: int) -> bytes:
            if fd in own:
                reads[-1].append(own[fd])
            return real(fd, n, offset)

        os.pread = counting
        try:
            for _ in range(ticks):
                reads.append([])
                values: Dict[str, float] = {}
                tree.sample(values)
                samples.append(values)
                time.sleep(gap)
        finally:
            os.pread = real
        tree.close()
        return samples, reads
    finally:
        child.kill()
        child.wait()


def test_a_sleeping_process_costs_one_small_read_per_tick() -> None:
    """A single-threaded process that did not run since the last tick: schedstat only."""
    samples, reads = _tree_reads("import time; print('ready', flush=True); time.sleep(30)", 5)
    assert reads[0] == ["schedstat", "stat", "status", "io"]
    assert all(r == ["schedstat"] for r in reads[2:]), reads
    assert samples[-1]["procs"] == 1 and samples[-1]["threads"] == 1
    assert samples[-1]["cpu_user_s"] == samples[1]["cpu_user_s"]


def test_a_busy_thread_beside_a_sleeping_main_thread_is_still_counted() -> None:
    """The main thread's schedstat stands still while another thread burns CPU: the
    process's CPU time must still move (several threads: stat is read every tick)."""
    code = ("import threading, time\n"
            "def burn():\n"
            "    end = time.time() + 30\n"
            "    while time.time() < end: pass\n"
            "threading.Thread(target=burn, daemon=True).start()\n"
            "print('ready', flush=True); time.sleep(30)")
    samples, reads = _tree_reads(code, 6)
    assert samples[-1]["threads"] == 2
    assert all("stat" in r for r in reads), reads
    assert samples[-1]["cpu_user_s"] - samples[1]["cpu_user_s"] >= 0.2
