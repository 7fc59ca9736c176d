"""The state of one pytest session, kept in ``config.stash`` (never in module globals).

Every process (the controller, or each pytest-xdist worker) streams its own parts into
``<run>/.parts/``; only the controller merges them into ``metrics.parquet`` and
``results.parquet`` and writes ``run.json`` and the report.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_collab.options import RunOptions

if TYPE_CHECKING:
    from pytest_collab.deploy import Program
    from pytest_collab.lan.profile import LAN, Device
    from pytest_collab.results.program_rows import ProgramRows
    from pytest_collab.results.records import ResultsJournal
    from pytest_collab.results.rundir import RunDir

SESSION_KEY = pytest.StashKey["CollabSession"]()


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class CollabSession:
    """Settings, the LAN, the run folder and the writers of this process."""

    def __init__(self, config: pytest.Config, settings: dict[str, Any], lan: "LAN",
                 experiment: dict[str, dict[str, Any]] | None = None,
                 dests: dict[str, str] | None = None) -> None:
        from pytest_collab.results.rundir import git_info, new_run_id

        self.config = config
        self.settings = settings
        self.lan = lan
        self.rootdir = Path(config.rootpath)
        workerinput = getattr(config, "workerinput", None)
        self.is_controller = workerinput is None
        self.worker_id = "main" if workerinput is None else workerinput["workerid"]
        if workerinput is not None and "collab_run_id" in workerinput:
            self.run_id = workerinput["collab_run_id"]
            self.run_path = Path(workerinput["collab_run_path"])
        else:
            self.run_id = new_run_id()
            out = Path(settings["out"])
            self.run_path = (out if out.is_absolute() else self.rootdir / out) / self.run_id
        self.started = _now_iso()
        self.proc = f"{self.worker_id}-{os.getpid()}"  # names this process's parts
        self.git = git_info(self.rootdir)
        self.options = RunOptions(settings, experiment or {}, dests or {}, lan, self.run_path.parent)
        from pytest_collab.results.ledger import TestLedger

        self.ledger = TestLedger(self.worker_id, self._tests_journal)
        self.tests = self.ledger.tests  # node id -> run.json entry
        self.live: set["Program"] = set()
        self._lock = threading.Lock()
        self._rundir: "RunDir | None" = None
        self._writer = None
        self._journal: "ResultsJournal | None" = None
        self._program_rows: "ProgramRows | None" = None
        self._runtimes: dict[str, Any] = {}
        self._device_locks: dict[str, threading.Lock] = {}
        self.used = False
        self.summary: list[str] = []
        from pytest_collab.dashboard.publish import LivePublisher  # the dashboard's Live page reads it

        self.publisher = LivePublisher(lambda: self.run_dir.root, self.run_id, self.worker_id, lan.name)
        config.pluginmanager.register(self.publisher, "collab-live")

    # ------------------------------------------------------------ lazily made
    @property
    def run_dir(self) -> "RunDir":
        """The run folder, created the first time a test needs it."""
        with self._lock:
            if self._rundir is None:
                from pytest_collab.results.rundir import RunDir

                if self.is_controller:
                    self._rundir = RunDir.create(self.run_path.parent, self.run_id)
                else:
                    self._rundir = RunDir(self.run_path)
                self._rundir.parts.mkdir(parents=True, exist_ok=True)
                if self.is_controller:  # what `collab recover` needs if this process dies
                    from pytest_collab.results.assemble import HEADER
                    from pytest_collab.results.durable import write_text_durably

                    write_text_durably(self._rundir.parts / HEADER,
                                       json.dumps(self.run_info(finished=False), default=str))
                self.used = True
            return self._rundir

    @property
    def metrics_sink(self):  # -> MetricsWriter
        if self._writer is not None:  # every program start asks: skip the lock and paths
            return self._writer
        parts = self.run_dir.parts
        with self._lock:
            if self._writer is None:
                from pytest_collab.results.metrics import MetricsWriter

                self._writer = MetricsWriter(parts / f"metrics-{self.proc}.parquet")
            return self._writer

    @property
    def journal(self) -> "ResultsJournal":
        """This process's ``collab.record()`` rows."""
        if self._journal is not None:  # every record() asks: skip the lock and paths
            return self._journal
        parts = self.run_dir.parts
        with self._lock:
            if self._journal is None:
                from pytest_collab.results.records import ResultsJournal

                self._journal = ResultsJournal(parts / f"results-{self.proc}.jsonl")
            return self._journal

    def _tests_journal(self) -> "ResultsJournal":
        from pytest_collab.results.records import ResultsJournal

        return ResultsJournal(self.run_dir.parts / f"tests-{self.proc}.jsonl")

    def test_started(self, nodeid: str) -> None:
        """A lab test's setup begins (its entry, and the run folder it belongs to)."""
        self.run_dir  # noqa: B018  (a lab test is part of the run, even one that fails at once)
        self.ledger.started(nodeid)

    @property
    def program_rows(self) -> "ProgramRows":
        """Rows device programs printed (``COLLAB_RESULT``), journalled as printed."""
        parts = self.run_dir.parts
        with self._lock:
            if self._program_rows is None:
                from pytest_collab.results.program_rows import ProgramRows

                self._program_rows = ProgramRows(parts / f"programs-{self.proc}.jsonl")
            return self._program_rows

    # ------------------------------------------------------------ provenance
    def provenance(self, nodeid: str, devices: "list[Device]") -> dict[str, Any]:
        """What every result row of a test carries: device(s), arch, image digest, git SHA."""
        names = sorted({d.name for d in devices})
        arches = sorted({self._arch(d) for d in devices} - {""})
        digests = sorted({self._image_digest(d) for d in devices} - {""})
        return {"device": ",".join(names) or None, "arch": ",".join(arches) or None,
                "image_digest": ",".join(digests) or None, "git_sha": self.git.get("commit")}

    @staticmethod
    def _arch(device: "Device") -> str:
        if device.arch:
            return str(device.arch)
        return platform.machine() if device.transport == "local" else ""

    def _image_digest(self, device: "Device") -> str:
        """The image the device's programs ran from, when they ran in containers."""
        runtime = self._runtimes.get(device.name)
        try:
            return str(getattr(runtime, "image_digest", None) or "")
        except Exception:  # noqa: BLE001  (provenance must never fail a record)
            return ""

    def record_row(self, row: dict[str, Any], values: dict[str, Any]) -> None:
        """A ``collab.record()`` row: journalled, and it claims the printed row it carries."""
        self.journal.append(row)
        if self._program_rows is not None:
            self._program_rows.claim(str(row["test"]), values)

    def program_printed(self, program: "Program", values: dict[str, Any]) -> None:
        """A device program printed a ``COLLAB_RESULT`` row: journal it now (see program_rows)."""
        test = program.ctx.test
        meta = {"run": self.run_id, "test": test, "testcase": self.test_info(test).get("testcase"),
                "program": program.name, **self.provenance(test, [program.device])}
        self.program_rows.printed(meta, values)

    def runtime_for(self, device: "Device") -> Any:
        """One transport and runtime per device per process, reused by every test.

        Locked per device, not per session: devices connect side by side."""
        with self._lock:
            device_lock = self._device_locks.setdefault(device.name, threading.Lock())
        with device_lock:
            if device.name not in self._runtimes:
                from pytest_collab.runtime import get_runtime
                from pytest_collab.transport import get_transport

                device = self.effective(device)
                transport = get_transport(device, profile_path=self.lan.path,
                                          link_timeout=self.settings["link_timeout"],
                                          local_only=self.lan.emulated)
                options = {"registry": self.settings["registry"]} if device.runtime == "docker" else {}
                self._runtimes[device.name] = get_runtime(device, transport, self.run_id, **options)
            return self._runtimes[device.name]

    def effective(self, device: "Device") -> "Device":
        """The device as this run uses it (``--collab-runtime`` overrides the profile)."""
        wanted = self.settings["runtime"]
        if wanted in ("profile", device.runtime):
            return device
        import dataclasses

        return dataclasses.replace(device, runtime=wanted)

    @property
    def uses_containers(self) -> bool:
        return any(self.effective(d).runtime == "docker" for d in self.lan.devices)

    def sweep_containers(self, this_run: bool = False) -> list[str]:
        """Remove program containers of crashed runs (or of this run, at its end), by label.

        Only where this run uses containers; a missing engine is not this step's error.
        """
        if not self.uses_containers or not self.is_controller:
            return []
        from pytest_collab.containers.engines import engine_available, local_client
        from pytest_collab.runtime.labels import sweep

        if not engine_available():
            return []
        return sweep(local_client(), self.run_id if this_run else None).removed

    def test_info(self, nodeid: str) -> dict[str, Any]:
        return self.ledger.entry(nodeid)

    # ------------------------------------------------------------ leases
    def say(self, line: str) -> None:
        """A line on the terminal now, even from inside a test (progress that can't wait)."""
        import contextlib

        capman = self.config.pluginmanager.getplugin("capturemanager")
        reporter = self.config.pluginmanager.getplugin("terminalreporter")
        with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
            if reporter is not None and self.is_controller:
                reporter.write_line(line)
            else:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()

    def lease(self, nodeid: str, constraint: Any) -> Any:
        """Lease a test's devices (waits are printed as they happen); a lost lease aborts the test."""
        from pytest_collab.leases import backend_for
        from pytest_collab.leases.core import acquire_from, owner_info

        backend = backend_for(self.settings["leases"], self.lan, self.rootdir)
        lease = acquire_from(backend, self.lan, constraint, owner_info(self.run_id, nodeid),
                             timeout=self.settings["lease_timeout"], on_wait=self.say)
        lease.watch(lambda why: self.lease_lost(nodeid, why))
        return lease

    def lease_lost(self, nodeid: str, why: str) -> None:
        """Stop the test's programs at once: another run may be using its devices now."""
        self.test_info(nodeid)["lease_lost"] = why
        self.say(f"collab: {nodeid}: {why}; stopping its programs, the test fails")
        for program in list(self.live):
            if program.ctx.test == nodeid:
                try:
                    program.kill()
                except Exception:  # noqa: BLE001  (kill every one)
                    pass

    # ------------------------------------------------------------ ending
    def kill_live_programs(self) -> None:
        for program in list(self.live):
            try:
                program.stop(grace=1.0)
            except Exception:
                pass
        self.live.clear()

    def close_writers(self) -> None:
        """Finish this process's parts (each one an atomic rename)."""
        if self._writer is not None:
            self._writer.close()
        for journal in (self._journal, self._program_rows, self.ledger):
            if journal is not None:
                journal.close()
        for runtime in self._runtimes.values():
            try:
                runtime.close()
                runtime.transport.close()
            except Exception:
                pass

    def finish_controller(self) -> list[str]:
        """Merge every process's parts, write run.json and, if asked, the report."""
        if not (self.used or self.tests):
            if self.settings["report"] == "html":
                return ["collab: no test used the lab (the collab fixture), so there is no run to "
                        "report; `collab report reports/latest` renders the last one"]
            return []
        from pytest_collab.results.assemble import clear_parts, write_metrics, write_results

        rundir = self.run_dir
        _, rebuilt, dead = write_metrics(rundir)
        outcomes = {nodeid: str(info.get("outcome")) for nodeid, info in self.tests.items()}
        _, printed = write_results(rundir, outcomes)
        rundir.write_run_json(self.run_info())
        lines = [f"collab run folder: {rundir.root}"]
        if dead:
            lines.append(f"collab: process(es) {', '.join(dead)} died mid-run; their {rebuilt} metric "
                         "rows were rebuilt from the raw logs, nothing was lost")
        if printed:
            lines.append(f"collab: {printed} result row(s) printed by programs of tests that did not "
                         "pass were kept in results.parquet (source = program)")
        if self.settings["report"] == "html":
            from pytest_collab.report import render_report

            lines.append(f"collab report: {render_report(rundir.root)}")
        clear_parts(rundir)
        return lines

    def run_info(self, finished: bool = True) -> dict[str, Any]:
        """run.json; unfinished, it is the header `collab recover` starts from after a crash."""
        import socket

        from pytest_collab.results.rundir import versions

        workers = getattr(self.config.option, "numprocesses", None) or 0
        info = {
            "run_id": self.run_id,
            "started": self.started,
            "finished": _now_iso() if finished else None,
            "argv": list(sys.argv),
            "rootdir": str(self.rootdir),
            "profile": {
                "name": self.lan.name,
                "path": str(self.lan.path) if self.lan.path else None,
                "devices": [d.to_dict() for d in self.lan.devices],
            },
            "tests": self.tests,
            "versions": versions(),
            "git": self.git,
            "workers": int(workers) if str(workers).isdigit() else workers,
            "settings": dict(self.settings),
            "options": self.options.experiment,
        }
        if not finished:
            info.update(host=socket.gethostname(), pid=os.getpid())
        return info


def get_session(config: pytest.Config) -> CollabSession:
    return config.stash[SESSION_KEY]


def collab_options_of(config: pytest.Config) -> RunOptions:
    """The resolved options and lab of this run, for hooks (tests use the ``collab_options`` fixture)."""
    return get_session(config).options
