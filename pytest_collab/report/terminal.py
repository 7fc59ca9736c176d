"""The results at the end of a pytest session: each experiment's headline as a table.

Like pytest-benchmark's table: the numbers a person ran the session for, in the
terminal, without opening a file. Rows are the experiment's summary rows (the same as
the report's first table); the key figure's column is marked and, for passed rows, the
best value is starred. Time spent waiting for a device lease is listed apart from the
tests' own durations.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_collab.report.outcomes import TestOutcome
from pytest_collab.report.summary import Summary

MAX_ROWS = 40
MAX_CELL = 40


def _clip(text: str) -> str:
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def _best_row(summary: Summary) -> int | None:
    index = summary.key_index
    better = summary.headline.direction()
    if index is None or better is None:
        return None
    scored = [(row[index].value, i) for i, row in enumerate(summary.rows)
              if isinstance(row[index].value, float) and summary.outcomes[i] == "passed"]
    if not scored:
        return None
    return (max(scored) if better == "higher" else min(scored))[1]


def table_lines(summary: Summary) -> list[str]:
    """One experiment's summary as aligned text (numbers right, text left)."""
    header = list(summary.header)
    key = summary.key_index
    if key is not None:
        header[key] = f"*{header[key]}*"
    best = _best_row(summary)
    body = [[_clip(c.text) for c in row] for row in summary.rows[:MAX_ROWS]]
    if best is not None and best < len(body) and key is not None:
        body[best][key] += " (best)"
    numeric = [all(isinstance(r[i].value, float) or r[i].text == "" for r in summary.rows) and
               any(isinstance(r[i].value, float) for r in summary.rows) for i in range(len(header))]
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if numeric[i] else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in body]
    if len(summary.rows) > MAX_ROWS:
        out.append(f"... {len(summary.rows) - MAX_ROWS} more rows in report.html")
    return out


def lease_lines(outcomes: list[TestOutcome]) -> list[str]:
    """Tests that waited for a device lease, apart from their own duration."""
    waited = [o for o in outcomes if (o.lease_wait_s or 0) >= 0.05]
    if not waited:
        return []
    total = sum(o.lease_wait_s or 0 for o in waited)
    lines = [f"waited {total:.1f} s for device leases in {len(waited)} test(s), apart from their own time:"]
    for o in waited:
        own = "" if o.own_duration_s is None else f"; the test itself took {o.own_duration_s:.1f} s"
        lines.append(f"  {o.short}: waited {o.lease_wait_s:.1f} s{own}")
    return lines


def headline_lines(run_root: Path) -> list[tuple[str, list[str]]]:
    """``[(title, lines)]``: one block per experiment, then lease waits."""
    from pytest_collab.report.data import load_run
    from pytest_collab.report.summary import run_summaries

    outcomes, found = run_summaries(load_run(run_root, metrics=False))
    blocks = []
    for summary in found:
        h = summary.headline
        title = f"{summary.testcase}: {len(summary.rows)} row(s)"
        if h.key:
            title += f", key figure {h.key}" + {"higher": " (higher is better)",
                                                "lower": " (lower is better)"}.get(h.direction() or "", "")
        blocks.append((title, table_lines(summary)))
    waits = lease_lines(outcomes)
    if waits:
        blocks.append(("device leases", waits))
    return blocks


def terminal_summary(terminalreporter: Any, run_root: Path | None) -> None:
    """Write the headline tables of the run at ``run_root`` (nothing without a run)."""
    if run_root is None or not (Path(run_root) / "run.json").is_file():
        return
    try:
        blocks = headline_lines(Path(run_root))
    except Exception as exc:  # noqa: BLE001  (a summary must never turn a run into an error)
        terminalreporter.write_line(f"collab: results table not shown: {type(exc).__name__}: {exc}", yellow=True)
        return
    for title, lines in blocks:
        terminalreporter.write_sep("-", f"collab: {title}")
        for text in lines:
            terminalreporter.write_line(text)
