"""The run's tests as run.json will list them, kept true while the run goes on.

Each process keeps the entries of the tests it runs (outcome, reason, lease wait, log
folder, ...), journals every change to ``.parts/tests-<proc>.jsonl`` (so a run rebuilt
after its controller died still knows its outcomes) and hands the entry to the xdist
controller on each report. The controller folds workers' entries in, and a test that
was set up but never torn down when the session ended was interrupted.
"""
from __future__ import annotations

from typing import Any, Callable

from pytest_collab.results.outcomes import apply_report, mark_interrupted, trim
from pytest_collab.results.records import ResultsJournal
from pytest_collab.results.rundir import slug


class TestLedger:
    """Test node id -> its run.json entry, for one process."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, worker_id: str, journal: Callable[[], ResultsJournal]) -> None:
        self.worker_id = worker_id
        self.tests: dict[str, dict[str, Any]] = {}
        self.running: set[str] = set()      # set up and not yet torn down
        self.interrupted: str | None = None  # why the session was interrupted, if it was
        self._journal_factory = journal
        self._journal: ResultsJournal | None = None

    def entry(self, nodeid: str) -> dict[str, Any]:
        return self.tests.setdefault(nodeid, {})

    def _journal_entry(self, nodeid: str) -> None:
        if self._journal is None:
            self._journal = self._journal_factory()
        self._journal.append({"test": nodeid, "running": nodeid in self.running,
                              "info": self.tests[nodeid]}, stamp=False)

    def _defaults(self, nodeid: str) -> dict[str, Any]:
        """The contract's fields every entry has, also for a test skipped before its setup ran."""
        info = self.entry(nodeid)
        info.setdefault("lease_wait_s", 0.0)
        info.setdefault("logs", f"logs/{slug(nodeid)}")
        info.setdefault("worker", self.worker_id)
        return info

    def started(self, nodeid: str) -> None:
        """A lab test's setup begins: it is running until its teardown report."""
        self._defaults(nodeid)
        self.running.add(nodeid)
        self._journal_entry(nodeid)

    def report(self, nodeid: str, report: Any) -> None:
        """Fold a phase's report into the test's entry (rules: results/outcomes.py)."""
        info = self._defaults(nodeid)
        info["duration_s"] = info.get("duration_s", 0.0) + report.duration
        apply_report(info, report)
        was_running = nodeid in self.running
        if report.when == "teardown":
            self.running.discard(nodeid)
        if was_running:
            self._journal_entry(nodeid)
        report.collab = dict(info)  # travels to the xdist controller with the report

    def merge(self, report: Any) -> None:
        """On the xdist controller: a worker's report, with its test's entry (or its crash)."""
        info = getattr(report, "collab", None)
        if isinstance(info, dict):
            self.entry(report.nodeid).update(info)
            if report.when == "setup":
                self.running.add(report.nodeid)
            elif report.when == "teardown":
                self.running.discard(report.nodeid)
        elif report.when not in ("setup", "call", "teardown") and report.failed:
            entry = self.entry(report.nodeid)  # the worker died running it (kill -9, OOM)
            self.running.discard(report.nodeid)
            entry["outcome"] = "error"
            entry["reason"] = trim(str(report.longrepr))

    def mark_unfinished(self) -> None:
        """Tests still running when the session ended were interrupted (Ctrl-C, SIGTERM)."""
        why = self.interrupted or "the session ended while the test ran"
        for nodeid in sorted(self.running):
            mark_interrupted(self.entry(nodeid), why)
        self.running.clear()

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
