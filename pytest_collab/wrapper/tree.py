"""Tracks the program's whole process tree and sums its metrics, cheaply, at every tick.

Discovery reads ``/proc/<pid>/task/<tid>/children`` of processes already tracked (no
scan of /proc), and the wrapper itself is searched too, about once a second and at the
end: it makes itself a child subreaper, so orphans of the tree (double forks, setsid
daemons) are re-parented to it instead of escaping. Once seen, a process stays tracked
through its kept-open files until it is gone, whatever its parent becomes.
"""
from __future__ import annotations

import os
import time
from typing import Dict, List, Optional

from . import procfs

_ZOMBIE = (b"Z", b"X", b"x")
_BUF = procfs.BUF
_CLK_TCK, _PAGE_SIZE = procfs.CLK_TCK, procfs.PAGE_SIZE
_COUNTERS = ("utime", "stime", "read_bytes", "write_bytes", "ctx_vol", "ctx_invol")


class _Proc:
    """Kept-open files and the last values read for one process of the tree."""

    __slots__ = ("pid", "stat", "status", "io", "children", "sched", "sched_seen", "zombie",
                 "utime", "stime", "threads", "rss", "read_bytes", "write_bytes",
                 "ctx_vol", "ctx_invol")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        base = "/proc/%d/" % pid
        self.stat = procfs.open_ro(base + "stat")
        self.status = procfs.open_ro(base + "status")
        self.io = procfs.open_ro(base + "io")
        self.children = procfs.open_ro("%stask/%d/children" % (base, pid))
        self.sched = procfs.open_ro(base + "schedstat")
        self.sched_seen = b""  # schedstat when everything was last read
        self.zombie = False
        self.utime = self.stime = self.threads = self.rss = 0
        self.read_bytes = self.write_bytes = self.ctx_vol = self.ctx_invol = 0

    def read(self) -> bool:
        """Refresh the values; False once the process is gone (reaped or unreadable).

        ``schedstat`` (run time in ns, time waiting to run, times run) is tiny and moves
        whenever the main thread is scheduled in or out, so it is read first:

        - unchanged, in a single-threaded process: nothing of it ran since the last tick,
          so its CPU times, context switches, I/O and thread count are as last read (its
          resident memory too, unless the kernel reclaimed pages meanwhile: then the drop
          shows at its next run). One small read instead of three or four: most
          processes of a tree sleep through most ticks.
        - unchanged, several threads: another thread may have run; everything but
          ``status`` (its context switches are the main thread's, like psutil's) is read.
        - moved, or a kernel without sched info (zeros): everything is read.

        Calls ``os.pread`` itself rather than :func:`procfs.pread`: this runs for every
        process at every tick, and a Python call is a fair share of its cost."""
        pread = os.pread
        mark = b""
        if self.sched >= 0:
            try:
                mark = pread(self.sched, 64, 0)
            except OSError:
                return False
            if mark == self.sched_seen:
                if self.threads == 1:
                    return True
            elif mark == b"0 0 0\n":  # no sched info (or never ran yet): status every time
                procfs.close(self.sched)
                self.sched = -1
        try:
            data = pread(self.stat, _BUF, 0)
        except OSError:
            return False
        try:
            state, _, self.utime, self.stime, self.threads, self.rss = procfs.parse_stat(data)
            self.zombie = state in _ZOMBIE
            if self.zombie:  # no memory, no status worth reading; counters stay as last read
                return True
            if not mark or mark != self.sched_seen:
                self.sched_seen = mark
                try:
                    data = pread(self.status, _BUF, 0)
                except OSError:
                    data = b""
                if data:
                    self.ctx_vol, self.ctx_invol = procfs.parse_ctx(data)
            try:
                data = pread(self.io, _BUF, 0) if self.io >= 0 else b""
            except OSError:
                data = b""
            if data:
                self.read_bytes, self.write_bytes = procfs.parse_io(data)
            else:
                procfs.close(self.io)
                self.io = -1
        except (ValueError, IndexError):
            return False  # a truncated read of a dying process
        return True

    def close(self) -> None:
        for fd in (self.stat, self.status, self.io, self.children, self.sched):
            procfs.close(fd)


class Tree:
    """The program's process tree: discovery, metric totals, and signalling."""

    def __init__(self, root: int, hz: float) -> None:
        self.root = root
        self._procs: Dict[int, _Proc] = {}
        self._gone = [0] * len(_COUNTERS)  # counters of exited procs, in _COUNTERS order
        self._self = os.getpid()
        self._self_children = procfs.open_ro("/proc/%d/task/%d/children" % (self._self, self._self))
        self._fast = procfs.children_files_supported(self._self)
        self._tick = 0
        self._slow_every = max(1, int(round(hz)))  # orphans, other threads' children: ~1 s
        self._last_t = time.monotonic()  # cpu_percent of the first sample covers the start
        self._last_ticks = 0
        self.has_zombies = False  #: as of the last sample: whether a reap may be due
        self._track(root)

    def _track(self, pid: int) -> None:
        if pid not in self._procs and pid != self._self:
            proc = _Proc(pid)
            if proc.stat >= 0:
                self._procs[pid] = proc
            else:
                proc.close()

    def discover(self, full: bool = False) -> None:
        """Track descendants that appeared since the last call.

        Children of tracked processes are looked for at every call; the wrapper's own
        (adopted orphans never seen before: a double fork faster than a tick) and those
        of non-main threads about once a second, or at once when ``full``.
        """
        self._tick += 1
        if not self._fast:
            self._discover_by_scan()
            return
        slow = full or self._tick % self._slow_every == 0
        queue = procfs.parse_pids(procfs.pread(self._self_children)) if slow else []
        pread = os.pread
        for proc in self._procs.values():  # tracked below, once this loop is done
            if proc.zombie:
                continue
            try:
                data = pread(proc.children, _BUF, 0)
            except OSError:
                data = b""
            if data:  # mostly empty: no call for nothing
                queue.extend(procfs.parse_pids(data))
            if slow and proc.threads > 1:  # children forked by a non-main thread
                for tid in procfs.task_ids(proc.pid):
                    if tid != proc.pid:
                        queue.extend(procfs.parse_pids(procfs.read_file(
                            "/proc/%d/task/%d/children" % (proc.pid, tid))))
        while queue:
            pid = queue.pop()
            if pid not in self._procs:
                self._track(pid)
                if pid in self._procs:
                    queue.extend(procfs.parse_pids(procfs.pread(self._procs[pid].children)))

    def _discover_by_scan(self) -> None:
        kids = procfs.ppid_map()
        queue = list(self._procs) + kids.get(self._self, [])
        while queue:
            pid = queue.pop()
            self._track(pid)
            queue.extend(c for c in kids.get(pid, ()) if c not in self._procs)

    def _refresh(self) -> None:
        """Read every tracked process; fold the counters of vanished ones into totals."""
        for pid in [p.pid for p in self._procs.values() if not p.read()]:
            proc = self._procs.pop(pid)
            for i, name in enumerate(_COUNTERS):
                self._gone[i] += getattr(proc, name)
            proc.close()

    def sample(self, into: Dict[str, float]) -> None:
        """Discover, read, and write the tree totals into ``into`` (cleared first)."""
        now = time.monotonic()
        self.discover()
        self._refresh()
        utime, stime, read_bytes, write_bytes, ctx_vol, ctx_invol = self._gone
        procs = threads = rss = 0
        io_complete = True
        self.has_zombies = False
        for p in self._procs.values():  # plain locals: this loop runs at every tick
            utime += p.utime
            stime += p.stime
            read_bytes += p.read_bytes
            write_bytes += p.write_bytes
            ctx_vol += p.ctx_vol
            ctx_invol += p.ctx_invol
            if not p.zombie:
                procs += 1
                threads += p.threads
                rss += p.rss
                io_complete = io_complete and p.io >= 0
            else:
                self.has_zombies = True
        ticks = utime + stime
        elapsed = now - self._last_t
        into.clear()
        into["cpu_percent"] = (
            round(100.0 * (ticks - self._last_ticks) / _CLK_TCK / elapsed, 2) if elapsed > 0 else 0.0)
        self._last_t, self._last_ticks = now, ticks
        into["cpu_user_s"] = utime / _CLK_TCK
        into["cpu_system_s"] = stime / _CLK_TCK
        into["rss_bytes"] = rss * _PAGE_SIZE
        into["threads"] = threads
        into["procs"] = procs
        if io_complete:  # a partial sum would be a guess: leave the metric out instead
            into["read_bytes"] = read_bytes
            into["write_bytes"] = write_bytes
        into["ctx_voluntary"] = ctx_vol
        into["ctx_involuntary"] = ctx_invol

    def readable(self, pid: int) -> bool:
        """Whether ``pid`` is tracked and its files still read (zombies included)."""
        proc = self._procs.get(pid)
        return proc is not None and procfs.pread(proc.stat) is not None

    def live_pids(self) -> List[int]:
        """Tracked processes still running (not zombies), after a full discovery."""
        self.discover(full=True)
        self._refresh()
        return self.known_live()

    def known_live(self) -> List[int]:
        """Tracked, non-zombie pids as of the last read (no new reads)."""
        return [p.pid for p in self._procs.values() if not p.zombie]

    def zombies(self) -> List[int]:
        return [p.pid for p in self._procs.values() if p.zombie]

    def signal(self, sig: int, pids: Optional[List[int]] = None) -> None:
        """Send ``sig`` to every live process of the tree (or to ``pids``)."""
        for pid in self.live_pids() if pids is None else pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass

    def close(self) -> None:
        for proc in self._procs.values():
            proc.close()
        self._procs.clear()
        procfs.close(self._self_children)
