"""pytest-native output of a run: JUnit XML properties and pytest-html extras.

Registered by the plugin at configure time (:func:`register`); works on the controller
and on pytest-xdist workers alike (each test's properties are made where it ran, from
that process's own results journal). Properties of a test that used the lab:

- ``collab_run_id``, ``collab_testcase``, ``collab_devices``, ``collab_lease_wait_s``;
- ``collab_<figure>``: the experiment's headline figures (the median over the test's
  records when it recorded several).

With pytest-html installed, its results table gets a "collab headline" column and its
summary a link to the run's ``report.html``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

PREFIX = "collab_"


class JournalReader:
    """The rows this process journaled, read incrementally (the journal flushes each line)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def rows_of(self, nodeid: str) -> list[dict[str, Any]]:
        if self.path.is_file():
            with open(self.path, encoding="utf-8") as fh:
                fh.seek(self._offset)
                for line in fh:
                    if not line.endswith("\n"):
                        break  # half a line: read it next time
                    self._offset += len(line.encode("utf-8"))
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    self.rows.setdefault(str(row.get("test")), []).append(row)
        return self.rows.get(nodeid, [])


def test_properties(info: dict[str, Any], run_id: str, rows: list[dict[str, Any]],
                    run_info: dict[str, Any], rootdirs: list[str]) -> list[tuple[str, Any]]:
    """The JUnit properties of one test from its run.json entry and its records."""
    props: list[tuple[str, Any]] = [(PREFIX + "run_id", run_id)]
    if info.get("testcase"):
        props.append((PREFIX + "testcase", info["testcase"]))
    if info.get("selection") or info.get("devices"):
        props.append((PREFIX + "devices", info.get("selection") or json.dumps(info.get("devices"))))
    if info.get("lease_wait_s") is not None:
        props.append((PREFIX + "lease_wait_s", info["lease_wait_s"]))
    if rows:
        import pandas as pd

        from pytest_collab.report.sections import load_testcase_sections
        from pytest_collab.report.summary import test_figures

        testcase = str(rows[0].get("testcase") or "")
        load_testcase_sections({testcase} if testcase else set(), rootdirs)
        frame = pd.DataFrame(rows)
        for name, value in test_figures(frame, str(rows[0]["test"]), run_info).items():
            props.append((PREFIX + name, float(f"{value:.6g}")))
    return props


class NativeOutput:
    """Adds the properties at each test's teardown report; remembers them for pytest-html."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.headlines: dict[str, str] = {}
        self._journal: JournalReader | None = None
        self._loaded: set[str] = set()

    def _session(self) -> Any:
        from pytest_collab.session import SESSION_KEY

        return self.config.stash.get(SESSION_KEY, None)

    def _reader(self, session: Any) -> JournalReader:
        if self._journal is None:
            self._journal = JournalReader(session.journal.path)   # the session names its own journal
        return self._journal

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        report = outcome.get_result()
        session = self._session()
        if report.when != "teardown" or session is None or "collab" not in getattr(item, "fixturenames", ()):
            return
        info = session.tests.get(item.nodeid, {})
        try:
            rows = self._reader(session).rows_of(item.nodeid)
            props = test_properties(info, session.run_id, rows, {"tests": session.tests},
                                    [str(session.rootdir), "."])
        except Exception as exc:  # noqa: BLE001  (properties must never fail a test)
            props = [(PREFIX + "run_id", session.run_id), (PREFIX + "properties_error", repr(exc))]
        report.user_properties.extend(props)
        figures = [f"{k[len(PREFIX):]}={v:g}" for k, v in props
                   if isinstance(v, float) and k != PREFIX + "lease_wait_s"]
        self.headlines[item.nodeid] = ", ".join(figures)
        if self.config.pluginmanager.hasplugin("html"):
            self._html_extras(report, session)

    def _html_extras(self, report: Any, session: Any) -> None:
        from pytest_html import extras

        target = self.report_link(session)
        if target:
            report.extras = [*getattr(report, "extras", []), extras.url(target, name="collab report")]


    def report_link(self, session: Any) -> str | None:
        """The run's report.html (or its folder) relative to pytest-html's file."""
        html_path = getattr(self.config.option, "htmlpath", None)
        if not html_path:
            return None
        target = session.run_path / "report.html" if session.settings.get("report") == "html" else session.run_path
        return os.path.relpath(target, Path(html_path).resolve().parent)


class HtmlHooks:
    """pytest-html's hooks; registered only when pytest-html is installed."""

    def __init__(self, native: NativeOutput) -> None:
        self.native = native

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(2, '<th class="collab">collab headline</th>')

    def pytest_html_results_table_row(self, report: Any, cells: list[str]) -> None:
        import html

        cells.insert(2, f'<td class="collab">{html.escape(self.native.headlines.get(report.nodeid, ""))}</td>')

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str]) -> None:
        import html

        session = self.native._session()
        link = self.native.report_link(session) if session is not None and session.used else None
        if link:
            prefix.append(f'<p>pytest-collab run {html.escape(session.run_id)}: '
                          f'<a href="{html.escape(link)}">{html.escape(link)}</a></p>')


def register(config: pytest.Config) -> None:
    """Called once from the plugin's ``pytest_configure``."""
    native = NativeOutput(config)
    config.pluginmanager.register(native, "collab-native-output")
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(HtmlHooks(native), "collab-html")
