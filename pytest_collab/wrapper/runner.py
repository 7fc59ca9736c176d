"""Runs one program under the wrapper: start, forward output, sample, end the tree, report.

Threads only block (pipe reads, ``waitid``); all decisions are taken by the main loop,
which sleeps in ``select`` on a wake-up pipe that signal handlers (through
``signal.set_wakeup_fd``) and threads write to. The program's exit is observed with
``WNOWAIT`` so its final sample can still be read before it is reaped.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from typing import BinaryIO, Callable, Dict, List, Optional, Tuple

from . import PROTOCOL_VERSION, procfs
from .emit import Emitter
from .sensors import Sensors
from .tree import Tree

UNITS = {"cpu_user_s": "s", "cpu_system_s": "s", "cpu_percent": "%", "rss_bytes": "B",
         "threads": "count", "procs": "count", "read_bytes": "B", "write_bytes": "B",
         "ctx_voluntary": "count", "ctx_involuntary": "count"}
_STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, n))
_KILL_PATIENCE_S = 3.0  # after SIGKILL: time for the kernel to tear processes down


def become_subreaper() -> bool:
    """Adopt orphans of the tree (PR_SET_CHILD_SUBREAPER) so none escapes tracking."""
    try:
        import ctypes
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
    except Exception:  # no ctypes, not Linux: discovery still works, orphans may escape
        return False


def _next_due(due: float, interval: float) -> float:
    """The next tick of the grid; after a stall, skip missed ticks rather than burst."""
    due += interval
    now = time.monotonic()
    return due if due > now else now + interval


def _watches_stdin() -> bool:
    """Only a pipe or socket on stdin is a controller's lifeline; /dev/null or a tty is not."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class Runner:
    """One wrapped program, from start to the ``exit`` line."""

    def __init__(self, argv: List[str], hz: float = 10.0, grace: float = 5.0,
                 stdin_watch: bool = True, net_scope: str = "auto",
                 out: Optional[BinaryIO] = None, heartbeat: Optional[float] = None,
                 power_meter: Optional[dict] = None) -> None:
        self.argv = argv
        self.hz = hz
        self.grace = grace
        self.stdin_watch = stdin_watch
        self.heartbeat = heartbeat
        self.net_scope = net_scope
        self.power_meter = power_meter
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self.emitter = Emitter(out if out is not None else sys.stdout.buffer,
                               on_broken=lambda: self._request_stop("stdout"))
        self._stop_reason: Optional[str] = None
        self._exited = False
        self._values: Dict[str, float] = {}

    # -- wake-ups from signal handlers and threads ------------------------------------
    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass  # the pipe is full: a wake-up is pending anyway

    def _request_stop(self, reason: str) -> None:
        if self._stop_reason is None:
            self._stop_reason = reason
        self._wake()

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._request_stop("signal %d" % signum)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            ready, _, _ = select.select([self._wake_r], [], [], seconds)
            if ready:
                try:
                    os.read(self._wake_r, 4096)
                except OSError:
                    pass

    # -- threads ----------------------------------------------------------------------
    def _pump(self, stream: BinaryIO, name: str) -> None:
        emit = self.emitter.emit
        for raw in iter(lambda: stream.readline(1 << 20), b""):
            if raw.endswith(b"\n"):
                raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
            emit("out", s=name, line=raw.decode("utf-8", "replace"))
        stream.close()

    def _await_exit(self, pid: int) -> None:
        try:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass
        self._exited = True
        self._wake()

    def _watch_stdin(self) -> None:
        """EOF on stdin, or (with ``heartbeat``) no byte for that long: the controller is gone.

        Over SSH a cut link gives no EOF (sshd does not notice for hours), hence the
        heartbeat. Then nobody reads our stdout either: stop emitting, and should the
        main loop still be stuck in a write to the dead channel, kill our own group.
        """
        last = time.monotonic()
        try:
            while True:
                if self.heartbeat:
                    left = last + self.heartbeat - time.monotonic()
                    if left <= 0:
                        self._controller_lost(self.heartbeat)
                        return
                    if not select.select([0], [], [], left)[0]:
                        continue
                if not os.read(0, 65536):
                    break
                last = time.monotonic()
        except OSError:
            pass
        self._request_stop("stdin EOF")

    def _controller_lost(self, silent_s: float) -> None:
        self.emitter.close()
        self._request_stop("no heartbeat from the controller for %g s" % silent_s)
        time.sleep(self.grace + 2 * _KILL_PATIENCE_S)
        try:   # still here: the main loop is blocked; sshd made us a process group leader
            os.killpg(os.getpgrp(), signal.SIGKILL)
        except OSError:
            pass

    def _thread(self, target: Callable[..., None], *args: object) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        return thread

    # -- the run ----------------------------------------------------------------------
    def run(self) -> int:
        """Run the program to its end; return the wrapper's exit code (the program's)."""
        for sig in _STOP_SIGNALS:
            signal.signal(sig, self._on_signal)
        signal.set_wakeup_fd(self._wake_w)
        become_subreaper()
        start = time.monotonic()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        try:
            proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env)
        except OSError as exc:
            return self._failed_start(exc)
        tree = Tree(proc.pid, self.hz)
        scope = procfs.net_scope(proc.pid) if self.net_scope == "auto" else self.net_scope
        net_names = ("net_rx_bytes", "net_tx_bytes") if scope == "netns" else (
            "host_net_rx_bytes", "host_net_tx_bytes")
        net = procfs.NetDev(proc.pid)
        sensors = Sensors(meter=self.power_meter, on_note=lambda line: self.emitter.emit("note", line=line))
        units = dict(UNITS, **dict.fromkeys(net_names, "B"), **sensors.units)
        self.emitter.emit("start", v=PROTOCOL_VERSION, pid=proc.pid, argv=self.argv, hz=self.hz,
                          net_scope=scope, units=units, host=socket.gethostname(),
                          board=sorted(sensors.units))
        for note in sensors.notes:  # once per run, never per sample
            self.emitter.emit("note", line=note)
        pumps = [self._thread(self._pump, proc.stdout, "stdout"),
                 self._thread(self._pump, proc.stderr, "stderr")]
        self._thread(self._await_exit, proc.pid)
        if self.stdin_watch and _watches_stdin():
            self._thread(self._watch_stdin)

        has_sensors = bool(sensors)

        def sample() -> None:
            values = self._values
            tree.sample(values)
            counts = net.read(tree.known_live)
            if counts is not None:
                values[net_names[0]], values[net_names[1]] = counts
            if has_sensors:
                sensors.read(values)
            self.emitter.sample(proc.pid, values)
            if tree.has_zombies:
                self._reap_orphans(tree)

        self._loop(sample)
        self._end_tree(tree, sample)
        if tree.readable(proc.pid):
            sample()  # the final sample: the program is a zombie, its counters still read
        code, sig, status = self._reap(proc.pid)
        proc.returncode = status
        self._reap_orphans(tree)
        for pump in pumps:
            pump.join(timeout=2.0)  # pipes held by an escaped process must not hang us
        self.emitter.emit("exit", code=code, signal=sig, wall_s=round(time.monotonic() - start, 3))
        self.emitter.close()
        tree.close()
        net.close()
        sensors.close()
        return 128 + sig if sig is not None else (code if code is not None else 1)

    def _loop(self, sample: Callable[[], None]) -> None:
        """Sample at ``hz`` on a fixed grid until a stop is asked or the program exits."""
        interval = 1.0 / self.hz
        monotonic = time.monotonic
        due = monotonic() + interval
        while self._stop_reason is None and not self._exited:
            now = monotonic()
            if now < due:
                self._sleep(due - now)
                continue
            sample()
            due += interval
            if due <= now:  # a stall: skip the missed ticks rather than burst (_next_due)
                due = now + interval

    def _end_tree(self, tree: Tree, sample: Callable[[], None]) -> None:
        """SIGTERM every live process of the tree, SIGKILL what is left after ``grace``."""
        interval = 1.0 / self.hz
        signalled: set = set()
        deadline = time.monotonic() + self.grace
        killing = False
        due = time.monotonic() + interval
        while True:
            self._reap_orphans(tree)
            live = tree.live_pids()
            if not live:
                return
            now = time.monotonic()
            if not killing and now >= deadline:
                killing, deadline = True, now + _KILL_PATIENCE_S
            if killing:
                tree.signal(signal.SIGKILL, live)
                if now >= deadline:
                    return  # unkillable (D state): report what we have
            else:
                fresh = [p for p in live if p not in signalled]
                tree.signal(signal.SIGTERM, fresh)
                signalled.update(fresh)
            if now >= due:
                sample()
                due = _next_due(due, interval)
            self._sleep(min(0.05, max(0.0, deadline - now)) or 0.01)

    @staticmethod
    def _reap_orphans(tree: Tree) -> None:
        """Reap adopted orphans that died (only our own children can be reaped)."""
        for pid in tree.zombies():
            if pid != tree.root:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    def _reap(self, pid: int) -> Tuple[Optional[int], Optional[int], Optional[int]]:
        """``(code, signal, Popen-style returncode)`` of the program, reaping it."""
        deadline = time.monotonic() + _KILL_PATIENCE_S
        while True:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return None, None, None
            if done:
                break
            if time.monotonic() >= deadline:
                return None, None, None
            self._sleep(0.02)
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            return None, sig, -sig
        code = os.WEXITSTATUS(status)
        return code, None, code

    def _failed_start(self, exc: OSError) -> int:
        """Report a program that could not start the way a shell would (127 / 126)."""
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        self.emitter.emit("start", v=PROTOCOL_VERSION, pid=None, argv=self.argv, hz=self.hz,
                          net_scope="host", units={}, host=socket.gethostname())
        self.emitter.emit("out", s="stderr", line="collab_wrapper: cannot start %s: %s"
                          % (self.argv[0], exc))
        self.emitter.emit("exit", code=code, signal=None, wall_s=0.0)
        self.emitter.close()
        return code
