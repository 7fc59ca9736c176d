"""The pytest side of the dashboard's Live page: one small state file per session.

Each pytest process (the controller, or each xdist worker) that runs a lab test keeps
``<run>/live/<worker>.json`` up to date: its tests (waiting for a lease, running, their
outcome) and its programs (which device, which log). The file is rewritten atomically
on each event (a test starts, gets its devices, ends; a program starts), a few hundred
bytes to a few kB, by a writer thread: an event only changes a dict in memory (tens of
microseconds), so pytest never waits for the disk nor for anybody: the dashboard reads
these files and the programs' raw ``.jsonl`` logs, and nobody has to listen. A write
that fails (a full disk) is given up silently for the rest of the session.

Imports only the stdlib and pytest: it is loaded with the plugin.
"""
from __future__ import annotations

import getpass
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generator

import pytest

if TYPE_CHECKING:
    from pytest_collab.deploy import Program

VERSION = 1
LIVE_DIR = "live"
#: finished tests and programs kept in the file (the counts cover every test)
KEEP_FINISHED = 50


def live_dir(run_root: Path) -> Path:
    """Where a run's live state files are: ``<run>/live/``."""
    return Path(run_root) / LIVE_DIR


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


class LivePublisher:
    """Keeps this process's live state file; registered as a pytest plugin by the session.

    ``run_root`` is called on the first event only, so a session that never leases a
    device creates no run folder.
    """

    def __init__(self, run_root: Callable[[], Path], run_id: str, worker: str, profile: str) -> None:
        self._run_root = run_root
        self._path: Path | None = None
        self._lock = threading.Lock()
        self._broken = False
        self._wake = threading.Event()
        self._stop = False
        self._writer: threading.Thread | None = None
        self.state: dict[str, Any] = {
            "v": VERSION, "run_id": run_id, "worker": worker, "pid": os.getpid(),
            "host": socket.gethostname(), "user": _user(), "profile": profile,
            "argv": list(sys.argv), "started": time.time(), "updated": time.time(),
            "state": "running", "counts": {}, "tests": {}, "programs": [],
        }

    @property
    def path(self) -> Path | None:
        """The state file, once the first event wrote it."""
        return self._path

    # ------------------------------------------------------------ events
    def test_waiting(self, nodeid: str) -> None:
        """The test asks for its devices (it waits while they are leased to others)."""
        self._update(lambda s: s["tests"].__setitem__(nodeid, {"state": "lease", "since": time.time()}))

    def test_running(self, nodeid: str, devices: dict[str, list[str]]) -> None:
        def change(s: dict[str, Any]) -> None:
            s["tests"][nodeid] = {"state": "running", "since": time.time(), "devices": devices}
        self._update(change)

    def test_finished(self, nodeid: str, outcome: str, duration_s: float) -> None:
        def change(s: dict[str, Any]) -> None:
            test = s["tests"].pop(nodeid, {})
            test.update(state=outcome, ended=time.time(), duration_s=round(duration_s, 3))
            s["tests"][nodeid] = test  # re-inserted last: the newest finished test
            s["counts"][outcome] = s["counts"].get(outcome, 0) + 1
            for program in s["programs"]:
                if program["test"] == nodeid:
                    program.setdefault("ended", time.time())
            _trim(s)
        self._update(change)

    def program_started(self, program: "Program") -> None:
        """Called right after ``collab.start`` launched a program (fixtures.py)."""
        log_dir = program.ctx.log_dir
        stem = f"{program.device.name}.{program.name}"
        try:
            rel = log_dir.relative_to(self._root())
        except ValueError:
            rel = log_dir
        entry = {"name": program.name, "device": program.device.name, "role": program.role,
                 "test": program.ctx.test, "started": time.time(),
                 "log": f"{rel}/{stem}.log", "jsonl": f"{rel}/{stem}.jsonl"}
        self._update(lambda s: s["programs"].append(entry))

    def session_finished(self) -> None:
        if self._path is not None:
            self._update(lambda s: s.__setitem__("state", "finished"))
            self.flush()

    # ------------------------------------------------------------ pytest hooks
    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: Any) -> Generator[None, Any, None]:
        if fixturedef.argname != "collab_devices":
            yield
            return
        nodeid = request.node.nodeid
        self.test_waiting(nodeid)
        outcome = yield
        try:
            selection = outcome.get_result()
        except BaseException:  # noqa: BLE001  (the lease failed: the report tells why)
            return
        if isinstance(selection, dict):
            self.test_running(nodeid, {k: [d.name for d in v] for k, v in selection.items()})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        test = self.state["tests"].get(report.nodeid)
        if test is None or test.get("state") not in ("lease", "running"):
            return
        if report.failed:
            test["outcome"] = "failed"
        elif report.when == "call" or "outcome" not in test:
            test["outcome"] = report.outcome
        test["duration"] = test.get("duration", 0.0) + report.duration
        if report.when == "teardown":
            self.test_finished(report.nodeid, test.pop("outcome"), test.pop("duration"))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        self.session_finished()

    # ------------------------------------------------------------ writing
    def _root(self) -> Path:
        return Path(self._run_root())

    def _update(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Change the state in memory; the writer thread puts it on disk (a caller never waits
        for the disk: on a busy ext4 disk one small rename costs milliseconds)."""
        with self._lock:
            change(self.state)
            self.state["updated"] = time.time()
            if self._broken:
                return
        if self._path is None:
            try:
                folder = live_dir(self._root())
                folder.mkdir(parents=True, exist_ok=True)
            except Exception:  # noqa: BLE001  (a dashboard's state file must never fail a test)
                self._broken = True
                return
            self._path = folder / f"{self.state['worker']}.json"
            self._writer = threading.Thread(target=self._write_loop, name="collab-live", daemon=True)
            self._writer.start()
        self._wake.set()

    def _write_loop(self) -> None:
        while not self._stop:
            self._wake.wait()
            self._wake.clear()
            self._write()

    def _write(self) -> None:
        path = self._path
        if path is None or self._broken:
            return
        with self._lock:
            text = json.dumps(self.state, default=str)
        try:
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        except Exception:  # noqa: BLE001
            self._broken = True

    def flush(self) -> None:
        """Write the current state now and stop the writer (at the session's end)."""
        if self._writer is None:
            return
        self._stop = True
        self._wake.set()
        self._writer.join(timeout=5)
        self._write()


def _trim(state: dict[str, Any]) -> None:
    """Keep every unfinished test and program, and only the newest finished ones."""
    done = [k for k, t in state["tests"].items() if t.get("state") not in ("lease", "running")]
    for key in done[:-KEEP_FINISHED]:
        del state["tests"][key]
    programs = state["programs"]
    ended = [i for i, p in enumerate(programs) if "ended" in p]
    drop = set(ended[:-KEEP_FINISHED])
    state["programs"] = [p for i, p in enumerate(programs) if i not in drop]
