"""The state of one pytest session, kept in ``config.stash`` (never in module globals).

Every process (the controller, or each pytest-xdist worker) streams its own parts into
``<run>/.parts/``; only the controller merges them into ``metrics.parquet`` and
``results.parquet`` and writes ``run.json`` and the report.
"""
from __future__ import annotations

import json
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_collab.deploy import Program
    from pytest_collab.lan.profile import LAN, Device
    from pytest_collab.results.rundir import RunDir

SESSION_KEY = pytest.StashKey["CollabSession"]()


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class CollabSession:
    """Settings, the LAN, the run folder and the writers of this process."""

    def __init__(self, config: pytest.Config, settings: dict[str, Any], lan: "LAN") -> None:
        from pytest_collab.results.rundir import new_run_id

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
        self.tests: dict[str, dict[str, Any]] = {}
        self.live: set["Program"] = set()
        self.worker_tests: list[dict[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._rundir: "RunDir | None" = None
        self._writer = None
        self._journal = None
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

                self._writer = MetricsWriter(parts / f"metrics-{self.worker_id}.parquet")
            return self._writer

    @property
    def journal(self):  # -> ResultsJournal
        if self._journal is not None:  # every record() asks: skip the lock and paths
            return self._journal
        parts = self.run_dir.parts
        with self._lock:
            if self._journal is None:
                from pytest_collab.results.records import ResultsJournal

                self._journal = ResultsJournal(parts / f"results-{self.worker_id}.jsonl")
            return self._journal

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
        return self.tests.setdefault(nodeid, {})

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
        if self._journal is not None:
            self._journal.close()
        for runtime in self._runtimes.values():
            try:
                runtime.close()
                runtime.transport.close()
            except Exception:
                pass

    def finish_controller(self) -> list[str]:
        """Merge every process's parts, write run.json and, if asked, the report."""
        if not (self.used or any(self.worker_tests)):
            if self.settings["report"] == "html":
                return ["collab: no test used the lab (the collab fixture), so there is no run to "
                        "report; `collab report reports/latest` renders the last one"]
            return []
        from pytest_collab.results.metrics import merge_parquet, metrics_schema
        from pytest_collab.results.records import write_results_parquet

        rundir = self.run_dir
        for tests in self.worker_tests:
            for nodeid, info in tests.items():
                self.tests.setdefault(nodeid, {}).update(info)
        metric_parts = sorted(rundir.parts.glob("metrics-*.parquet"))
        merge_parquet(metric_parts, rundir.metrics, metrics_schema())
        write_results_parquet(sorted(rundir.parts.glob("results-*.jsonl")), rundir.results)
        rundir.write_run_json(self.run_info())
        lines = [f"collab run folder: {rundir.root}"]
        if self.settings["report"] == "html":
            from pytest_collab.report import render_report

            lines.append(f"collab report: {render_report(rundir.root)}")
        for part in metric_parts:
            part.unlink(missing_ok=True)
        for part in rundir.parts.glob("results-*.jsonl"):
            part.unlink(missing_ok=True)
        try:
            rundir.parts.rmdir()
        except OSError:
            pass
        return lines

    def run_info(self) -> dict[str, Any]:
        from pytest_collab.results.rundir import git_info, versions

        workers = getattr(self.config.option, "numprocesses", None) or 0
        return {
            "run_id": self.run_id,
            "started": self.started,
            "finished": _now_iso(),
            "argv": list(sys.argv),
            "rootdir": str(self.rootdir),
            "profile": {
                "name": self.lan.name,
                "path": str(self.lan.path) if self.lan.path else None,
                "devices": [d.to_dict() for d in self.lan.devices],
            },
            "tests": self.tests,
            "versions": versions(),
            "git": git_info(self.rootdir),
            "workers": int(workers) if str(workers).isdigit() else workers,
            "settings": {k: v for k, v in self.settings.items()},
        }

    def export_tests(self) -> str:
        return json.dumps(self.tests, default=str)


def get_session(config: pytest.Config) -> CollabSession:
    return config.stash[SESSION_KEY]

