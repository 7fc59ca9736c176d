"""Small, allocation-light readers of Linux ``/proc`` files, shared by the tree sampler.

Files are opened once and re-read with ``os.pread(fd, n, 0)`` (one syscall, same as
seek(0)+read): a kept-open ``/proc/<pid>/...`` file also pins that very process, so a
recycled pid can never be read by mistake (reads then fail with ESRCH).
"""
from __future__ import annotations

import os
import re
from itertools import chain
from typing import Callable, Dict, List, Optional, Tuple

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
BUF = 4096  # every file read here fits (status is ~1.5 KiB)


def open_ro(path: str) -> int:
    """An fd for ``path``, or -1 when it does not exist or may not be read."""
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return -1


def close(fd: int) -> None:
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


def pread(fd: int, size: int = BUF) -> Optional[bytes]:
    """The file's content from offset 0, or None once the process is gone / unreadable."""
    try:
        data = os.pread(fd, size, 0)
    except OSError:
        return None
    return data or None


def read_file(path: str, size: int = 1 << 16) -> Optional[bytes]:
    """One-shot read, for files touched rarely (discovery, start-up)."""
    try:
        with open(path, "rb", buffering=0) as f:
            return f.read(size)
    except OSError:
        return None


def parse_stat(data: bytes) -> Tuple[bytes, int, int, int, int, int]:
    """``(state, ppid, utime, stime, num_threads, rss_pages)`` from ``/proc/<pid>/stat``.

    The command name may hold spaces and parentheses, so fields are counted from the
    last ``)``.
    """
    f = data[data.rindex(b")") + 2:].split()
    # f[0] is field 3 (state); field N is f[N - 3].
    return f[0], int(f[1]), int(f[11]), int(f[12]), int(f[17]), int(f[21])


def parse_ctx(data: bytes) -> Tuple[int, int]:
    """``(voluntary, nonvoluntary)`` context switches from ``/proc/<pid>/status``.

    Like psutil, these are the main thread's counts (the kernel prints per task here).
    """
    i = data.rfind(b"voluntary_ctxt_switches:", 0, data.rfind(b"nonvoluntary_ctxt_switches:"))
    f = data[i:].split()
    return int(f[1]), int(f[3])


def parse_io(data: bytes) -> Tuple[int, int]:
    """``(read_bytes, write_bytes)`` (storage I/O) from ``/proc/<pid>/io``."""
    f = data.split()
    # rchar wchar syscr syscw read_bytes write_bytes ...: values sit at odd indexes.
    return int(f[9]), int(f[11])


def parse_pids(data: Optional[bytes]) -> List[int]:
    """Pids of a ``task/<tid>/children`` file (space separated)."""
    return [int(p) for p in data.split()] if data else []


#: an interface line of ``net/dev``: ``name: rx_bytes`` and 7 more receive fields, then
#: ``tx_bytes`` (a name never holds a colon; the two header lines have none)
_NET_DEV_LINE = re.compile(rb"^[^:\n]*:\s*(\d+)(?:\s+\d+){7}\s+(\d+)", re.M)


def parse_net_dev(data: bytes) -> Tuple[int, int]:
    """``(rx_bytes, tx_bytes)`` summed over every interface of ``/proc/<pid>/net/dev``.

    One ``split`` of the body (a colon can be glued to a big number, hence the replace):
    three times cheaper than a regex pass, which stays the fallback for a layout with
    other than 16 counters per interface (17 fields with the name: literals below)."""
    body = data[data.find(b"\n", data.find(b"\n") + 1) + 1:]  # past the two header lines
    f = body.replace(b":", b" ").split()
    if len(f) != 17 * body.count(b"\n"):
        counts = list(map(int, chain.from_iterable(_NET_DEV_LINE.findall(data))))  # rx, tx, rx, tx, ...
        return sum(counts[0::2]), sum(counts[1::2])
    return sum(map(int, f[1::17])), sum(map(int, f[9::17]))


def children_files_supported(pid: int) -> bool:
    """Whether the kernel has ``/proc/<pid>/task/<tid>/children`` (CONFIG_PROC_CHILDREN)."""
    return os.path.exists("/proc/%d/task/%d/children" % (pid, pid))


def task_ids(pid: int) -> List[int]:
    try:
        return [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    except OSError:
        return []


def ppid_map() -> Dict[int, List[int]]:
    """parent pid -> child pids over all of /proc: the slow fallback for old kernels."""
    children: Dict[int, List[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        data = read_file("/proc/%s/stat" % name, BUF)
        if data:
            children.setdefault(parse_stat(data)[1], []).append(int(name))
    return children


def net_ns(pid: int) -> Optional[str]:
    """The network namespace id (``net:[inode]``) of ``pid``, or None if unreadable."""
    try:
        return os.readlink("/proc/%d/ns/net" % pid)
    except OSError:
        return None


def net_scope(pid: int) -> str:
    """``"netns"`` when ``pid`` has a network namespace of its own, else ``"host"``.

    The host's namespace is pid 1's; where that is hidden (no ptrace rights on pid 1),
    the wrapper's parent's stands in. Unknown means "host": its numbers are then named
    host-wide, which never overstates what the program did.
    """
    mine = net_ns(pid)
    if mine is None:
        return "host"
    for ref in (1, os.getppid()):
        other = net_ns(ref) if ref > 0 else None
        if other is not None:
            return "host" if other == mine else "netns"
    return "host"


class NetDev:
    """Network byte counters of a process's namespace, cumulative since the first read.

    The file belongs to one process; when it exits, the next live pid of the tree
    (same namespace, as far as the wrapper knows) takes over, and the counts continue.
    """

    def __init__(self, pid: int) -> None:
        self._fd = open_ro("/proc/%d/net/dev" % pid)
        self._size = BUF  # grows with the file (a host with many interfaces)
        self._base: Optional[Tuple[int, int]] = None
        self._last = (0, 0)

    def _pread(self) -> Optional[bytes]:
        """The whole file; a buffer the file filled is too small: a bigger one reads it again.
        (A 64 KiB buffer every time costs more than the read itself, for a 1 KiB file.)"""
        data = pread(self._fd, self._size)
        while data is not None and len(data) >= self._size:
            self._size *= 4
            data = pread(self._fd, self._size)
        return data

    def read(self, fallback_pids: Callable[[], List[int]]) -> Optional[Tuple[int, int]]:
        try:  # the common case inline: a file its buffer holds (-1 fails here too)
            data: Optional[bytes] = os.pread(self._fd, self._size, 0) or None
        except OSError:
            data = None
        if data is not None and len(data) >= self._size:
            data = self._pread()
        if data is None:
            close(self._fd)
            self._fd = -1
            for pid in fallback_pids():
                self._fd = open_ro("/proc/%d/net/dev" % pid)
                if self._fd >= 0:
                    data = self._pread()
                    if data is not None:
                        break
        if data is None:
            return None
        rx, tx = parse_net_dev(data)
        if self._base is None:
            self._base = (rx, tx)
        # max(): a counter reset (interface re-created) must not make totals go back.
        self._last = (max(self._last[0], rx - self._base[0]), max(self._last[1], tx - self._base[1]))
        return self._last

    def close(self) -> None:
        close(self._fd)
        self._fd = -1
