"""The report's tables as plain data (header + rows of text) for the template.

Kept apart from the HTML so the summaries (n / median / p90 / p99 of a sample list)
can be tested and reused by other front ends.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pytest_collab.report.outcomes import TestOutcome

if TYPE_CHECKING:  # pragma: no cover
    import pandas

#: results columns shown in a table's heading rather than in every row
_HEADING_COLUMNS = ("run", "test", "testcase")
_DEVICE_KEYS = ("name", "kind", "address", "transport", "runtime", "arch", "tags")


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


def summarise(values: Any) -> str:
    """A sample list as ``n=… median=… p90=… p99=…`` (finite values only)."""
    import numpy as np

    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if not arr.size:
        return "n=0"
    median, p90, p99 = np.percentile(arr, [50, 90, 99])
    return f"n={arr.size} median={median:.4g} p90={p90:.4g} p99={p99:.4g}"


def cell(value: Any) -> str:
    """One value as table text: lists summarised, floats to 6 significant digits."""
    import numpy as np

    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return summarise(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    if isinstance(value, (dict,)):
        return json.dumps(value, default=str)
    return str(value)


def results_tables(results: pandas.DataFrame) -> list[Table]:
    """One table per test (node id), one row per ``collab.record()`` call."""
    tables = []
    for test, rows in results.groupby("test", sort=False, observed=True):
        columns = [c for c in rows.columns if c not in _HEADING_COLUMNS
                   and not rows[c].map(lambda v: cell(v) == "").all()]
        testcases = {str(v) for v in rows.get("testcase", []) if v is not None}
        tables.append(Table(
            title=str(test), header=columns,
            rows=[[cell(v) for v in values] for values in rows[columns].itertuples(index=False)],
            note=f"testcase {', '.join(sorted(testcases))}" if testcases else ""))
    return tables


def tests_table(outcomes: list[TestOutcome]) -> Table:
    """Outcome, duration, lease wait (apart from the duration), devices, parameters."""
    rows = []
    for o in outcomes:
        params = ", ".join(f"{k}={v}" for k, v in o.params.items())
        wait = "" if o.lease_wait_s is None else f"{o.lease_wait_s:.1f}"
        rows.append([o.nodeid, o.outcome, "" if o.own_duration_s is None else f"{o.own_duration_s:.2f}",
                     wait, o.devices, params])
    return Table("Tests", ["test", "outcome", "time s", "lease wait s", "devices", "params"], rows)


def status_line(info: dict[str, Any], outcome_counts: dict[str, int]) -> str:
    """``12 tests: 10 passed, 1 failed, 1 interrupted · profile local · 41.2 s``."""
    total = sum(outcome_counts.values())
    parts = [f"{total} test{'s' if total != 1 else ''}" + (
        ": " + ", ".join(f"{n} {k}" for k, n in outcome_counts.items()) if total else "")]
    profile = (info.get("profile") or {}).get("name")
    if profile:
        parts.append(f"profile {profile}")
    if info.get("started"):
        parts.append(f"started {cell(info.get('started'))}")
    duration = _duration(info)
    parts.append(duration or "not finished")
    return " · ".join(parts)


def devices_table(info: dict[str, Any]) -> Table:
    devices = (info.get("profile") or {}).get("devices") or []
    rows = [[", ".join(map(str, d.get(k) or [])) if k == "tags" else cell(d.get(k))
             for k in _DEVICE_KEYS] for d in devices]
    return Table("Devices", list(_DEVICE_KEYS), rows)


def _duration(info: dict[str, Any]) -> str:
    try:
        start = datetime.fromisoformat(str(info["started"]))
        end = datetime.fromisoformat(str(info["finished"]))
    except (KeyError, ValueError):
        return ""
    if (start.tzinfo is None) != (end.tzinfo is None):
        start, end = start.replace(tzinfo=timezone.utc), end.replace(tzinfo=timezone.utc)
    return f"{(end - start).total_seconds():.1f} s"


def overview_table(info: dict[str, Any], run_id: str) -> Table:
    """Run id, profile, times, argv and git state as key/value rows."""
    profile = info.get("profile") or {}
    git = info.get("git") or {}
    commit = str(git.get("commit", ""))
    if commit and git.get("dirty"):
        commit += " (uncommitted changes)"
    argv = info.get("argv")
    rows = [
        ["run", str(info.get("run_id", run_id))],
        ["profile", " ".join(p for p in (str(profile.get("name", "")),
                                         f"({profile['path']})" if profile.get("path") else "") if p)],
        ["started", cell(info.get("started"))],
        ["finished", cell(info.get("finished")) or "not finished"],
        ["duration", _duration(info)],
        ["argv", " ".join(map(str, argv)) if isinstance(argv, list) else cell(argv)],
        ["rootdir", cell(info.get("rootdir"))],
        ["git commit", commit or "not in a git repository"],
        ["git branch", cell(git.get("branch"))],
        ["workers", cell(info.get("workers"))],
    ]
    return Table("Run", ["", ""], [r for r in rows if r[1]])


def versions_table(info: dict[str, Any]) -> Table:
    return Table("Versions", ["package", "version"],
                 [[k, str(v)] for k, v in (info.get("versions") or {}).items()])
