"""The Live page's data: running pytest sessions, read from files they write anyway.

Sessions are the live state files (:mod:`.publish`) under ``<reports>/<run>/live/``;
their programs' wrapper lines are tailed from the raw ``.jsonl`` logs (new bytes only,
each refresh). Per device of a session, samples of its programs become points on a
0.5 s grid: CPU % and memory summed over the programs, network as the rate of the rx+tx
counters (host-wide counters are shared by every program on a host, so the largest is
taken, not the sum), power as the largest ``power_w.*`` reading (a board rail, not per
program). Nothing here writes to a run folder.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from pytest_collab.dashboard.publish import LIVE_DIR
from pytest_collab.wrapper.emit import decode

STEP_S = 0.5           # chart grid
WINDOW_S = 90.0        # chart history
STALE_S = 2.0          # a program's last sample counts this long on the grid
RECENT_S = 1800.0      # finished sessions stay listed this long
SEED_BYTES = 512 * 1024  # a long log found mid-run is read from its last bytes only
POINT_GAP_S = 0.2      # samples closer than this in one program are thinned


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ProgramTail:
    """One program's ``.jsonl``, read incrementally: points (t, cpu, rss, net rate, power)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.points: deque[tuple[float, float, float, float | None, float | None, bool]] = deque()
        self.exit: dict[str, Any] | None = None
        self.last: dict[str, float] = {}
        self.last_t: float | None = None
        self._prev: tuple[float, float] | None = None   # (t, rx+tx bytes)
        self._shared_net = False

    def read(self) -> None:
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        if size < self.offset:       # replaced: start over
            self.offset, self.partial = 0, b""
        cut = self.offset == 0 and size > SEED_BYTES
        if cut:
            self.offset = size - SEED_BYTES
        if size == self.offset:
            return
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(size - self.offset)
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        if cut and lines:
            lines.pop(0)             # the first line after a seek is cut
        for raw in lines:
            obj = decode(raw)
            if obj is not None:
                self._take(obj)

    def _take(self, obj: dict[str, Any]) -> None:
        kind = obj.get("k")
        if kind == "exit":
            self.exit = {"code": obj.get("code"), "signal": obj.get("signal"), "t": obj.get("t")}
            return
        if kind != "m" or not isinstance(obj.get("v"), dict):
            return
        t, values = float(obj.get("t") or 0.0), obj["v"]
        self.last, self.last_t = values, t
        shared = "net_rx_bytes" not in values
        self._shared_net = shared
        prefix = "host_net_" if shared else "net_"
        total = values.get(f"{prefix}rx_bytes")
        rate = None
        if total is not None:
            total = float(total) + float(values.get(f"{prefix}tx_bytes") or 0.0)
            if self._prev is not None and t > self._prev[0]:
                rate = max(0.0, (total - self._prev[1]) / (t - self._prev[0]))
            self._prev = (t, total)
        powers = [float(v) for k, v in values.items() if k.startswith("power_w") and v is not None]
        if self.points and t - self.points[-1][0] < POINT_GAP_S:
            return
        self.points.append((t, float(values.get("cpu_percent") or 0.0), float(values.get("rss_bytes") or 0.0),
                            rate, max(powers) if powers else None, shared))
        while self.points and self.points[0][0] < t - WINDOW_S:
            self.points.popleft()


def device_series(tails: list[ProgramTail], now: float) -> dict[str, Any]:
    """The 0.5 s grid of one device from its programs' points (see the module docstring)."""
    start = now - WINDOW_S
    grid = [start + i * STEP_S for i in range(int(WINDOW_S / STEP_S) + 1)]
    series: dict[str, list[Any]] = {"t": [], "cpu": [], "mem": [], "net": [], "power": []}
    cursors = [0] * len(tails)
    latest: list[Any] = [None] * len(tails)
    for t in grid:
        cpu = mem = 0.0
        net_sum, net_shared, power = 0.0, None, None
        seen = False
        for i, tail in enumerate(tails):
            pts = tail.points
            while cursors[i] < len(pts) and pts[cursors[i]][0] <= t:
                latest[i] = pts[cursors[i]]
                cursors[i] += 1
            point = latest[i]
            if point is None or t - point[0] > STALE_S:
                continue
            seen = True
            cpu += point[1]
            mem += point[2]
            if point[3] is not None:
                if point[5]:
                    net_shared = max(net_shared or 0.0, point[3])
                else:
                    net_sum += point[3]
            if point[4] is not None:
                power = max(power or 0.0, point[4])
        if not seen:
            continue
        series["t"].append(round(t, 2))
        series["cpu"].append(round(cpu, 1))
        series["mem"].append(round(mem))
        series["net"].append(round(net_sum + (net_shared or 0.0)))
        series["power"].append(power)
    return series


class LiveMonitor:
    """Finds sessions under the reports folder and keeps their programs' tails."""

    def __init__(self, reports: Path, min_interval: float = 0.25) -> None:
        self.reports = Path(reports)
        self.min_interval = min_interval
        self.host = socket.gethostname()
        self._tails: dict[Path, ProgramTail] = {}
        self._read: dict[Path, tuple[int, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._snapshot: dict[str, Any] = {"sessions": [], "time": 0.0}
        self._taken = 0.0

    def alive(self, state: dict[str, Any]) -> bool:
        """A session on this host whose pytest process is gone is not running any more."""
        if state.get("state") != "running":
            return False
        if state.get("host") == self.host and isinstance(state.get("pid"), int):
            return pid_alive(state["pid"])
        return True

    def _states(self) -> list[tuple[Path, dict[str, Any]]]:
        found: list[tuple[Path, dict[str, Any]]] = []
        if not self.reports.is_dir():
            return found
        cache: dict[Path, tuple[int, dict[str, Any]]] = {}
        for path in self.reports.glob(f"*/{LIVE_DIR}/*.json"):
            if path.parent.parent.is_symlink():
                continue           # reports/latest points at a run listed under its own name
            try:
                stamp = path.stat().st_mtime_ns
                known = self._read.get(path)
                state = known[1] if known and known[0] == stamp else json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue           # being replaced right now: read again next time
            cache[path] = (stamp, state)
            found.append((path, state))
        self._read = cache         # an unchanged file is not parsed again
        return found

    def snapshot(self) -> dict[str, Any]:
        """Sessions with their tests, programs and device series (cached for ``min_interval``)."""
        with self._lock:
            now = time.time()
            if now - self._taken < self.min_interval:
                return self._snapshot
            sessions = []
            for path, state in self._states():
                alive = self.alive(state)
                if not alive and now - float(state.get("updated") or 0) > RECENT_S:
                    continue
                sessions.append(self._session(path.parent.parent, state, alive, now))
            sessions.sort(key=lambda s: (not s["alive"], -s["started"]))
            used = set()
            for session in sessions:    # tails no session refers to any more are dropped
                root = Path(session.pop("_root"))
                used |= {root / str(p.get("jsonl", "")) for p in session.pop("_programs")}
            self._tails = {p: t for p, t in self._tails.items() if p in used}
            self._snapshot = {"sessions": sessions, "time": now}
            self._taken = now
            return self._snapshot

    def _session(self, run_root: Path, state: dict[str, Any], alive: bool, now: float) -> dict[str, Any]:
        programs: list[dict[str, Any]] = []
        by_device: dict[str, list[ProgramTail]] = {}
        for index, prog in enumerate(state.get("programs") or []):
            path = run_root / str(prog.get("jsonl", ""))
            tail = self._tails.get(path)
            if tail is None:
                tail = self._tails[path] = ProgramTail(path)
            if tail.exit is None:
                tail.read()
            ended = tail.exit is not None or "ended" in prog or not alive
            status = "running" if not ended else (
                f"exited {tail.exit['code']}" if tail.exit and tail.exit.get("code") is not None
                else "stopped")
            programs.append({"id": index, "name": prog.get("name"), "device": prog.get("device"),
                             "test": prog.get("test"), "log": prog.get("log"), "status": status,
                             "cpu": tail.last.get("cpu_percent"), "rss": tail.last.get("rss_bytes"),
                             "started": prog.get("started")})
            by_device.setdefault(str(prog.get("device")), []).append(tail)
        tests = [{"nodeid": k, **v} for k, v in (state.get("tests") or {}).items()]
        state_of = {"lease": "waiting for a lease"}
        for test in tests:
            test["label"] = state_of.get(str(test.get("state")), test.get("state"))
            if test.get("state") in ("lease", "running") and not alive:
                test["label"] = "interrupted"
        return {"id": f"{run_root.name}/{state.get('worker')}", "run_id": run_root.name,
                "worker": state.get("worker"), "user": state.get("user"), "host": state.get("host"),
                "pid": state.get("pid"), "profile": state.get("profile"), "state": state.get("state"),
                "alive": alive, "started": float(state.get("started") or 0), "updated": state.get("updated"),
                "counts": state.get("counts") or {}, "tests": tests, "programs": programs,
                "devices": {name: device_series(tails, now) for name, tails in sorted(by_device.items())},
                "_root": str(run_root), "_programs": state.get("programs") or []}


def log_tail(reports: Path, run_id: str, rel: str, lines: int = 200) -> list[str]:
    """The last ``lines`` of a program's ``.log`` inside ``reports/<run_id>/logs/``."""
    from pytest_collab.dashboard.runs import run_folder
    from pytest_collab.errors import CollabError

    run = run_folder(reports, run_id)
    path = (run.root / rel).resolve()
    if run.logs.resolve() not in path.parents or path.suffix != ".log":
        raise CollabError(f"{rel!r}: not a program log of run {run_id} (expected logs/<test>/<file>.log)")
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read()
    except OSError as exc:
        raise CollabError(f"{path}: can not read ({exc})") from exc
    return data.decode("utf-8", "replace").splitlines()[-lines:]
