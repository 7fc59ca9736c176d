"""One summary table per experiment: a row per recorded result, its headline columns.

The same data feeds the report's first table, the terminal table at session end and
pytest-html's row. Cells keep the number for sorting next to the text shown.
Tests of the experiment that recorded nothing (a failure, an interruption) still get a
row, so the table never hides that a configuration is missing.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_collab.report.headline import Headline, headline_for
from pytest_collab.report.outcomes import TestOutcome, test_label

if TYPE_CHECKING:  # pragma: no cover
    import pandas

    from pytest_collab.report.data import RunData


@dataclass
class Cell:
    text: str
    value: float | str | None = None   # what sorting uses


@dataclass
class Summary:
    testcase: str
    headline: Headline
    header: list[str]
    rows: list[list[Cell]]
    outcomes: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def outcome_index(self) -> int:
        return self.header.index("outcome")

    @property
    def key_index(self) -> int | None:
        key = self.headline.key
        return self.header.index(key) if key in self.header else None


def number(value: Any) -> float | None:
    """A figure as one number: a sample list by its median, NaN/None as None."""
    import numpy as np

    if value is None or isinstance(value, (str, bool)):
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value, dtype=float)
        arr = arr[np.isfinite(arr)]
        return float(np.median(arr)) if arr.size else None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def fmt(value: float | None) -> str:
    """4 significant digits, thousands grouped; large/small numbers in exponent form."""
    if value is None:
        return ""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if value != 0 and (abs(value) >= 1e7 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{float(f'{value:.4g}'):,.{max(0, 3 - int(math.floor(math.log10(abs(value)))))}f}"


def setting_cell(value: Any) -> Cell:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Cell("", None)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return Cell(str(value), str(value))
    return Cell(fmt(float(value)), float(value))


def _arrow(headline: Headline) -> str:
    better = headline.direction()
    return {"higher": " (higher is better)", "lower": " (lower is better)"}.get(better or "", "")


def _rows_for(rows: pandas.DataFrame, h: Headline, outcome_of: Mapping[str, str]) -> tuple[list, list]:
    out, outcomes = [], []
    for record in rows.to_dict("records"):
        test = str(record.get("test"))
        cells = [Cell(test_label(test), test_label(test)),
                 Cell(outcome_of.get(test, ""), outcome_of.get(test, ""))]
        cells += [setting_cell(record.get(c)) for c in h.columns]
        for f in h.figures:
            value = number(record.get(f))
            cells.append(Cell(fmt(value), value))
        out.append(cells)
        outcomes.append(outcome_of.get(test, ""))
    return out, outcomes


def _test_is_redundant(testcase: str, headline: Headline, outcomes: list[TestOutcome]) -> bool:
    """One test function whose parameters are all headline columns: its id adds nothing."""
    mine = [o for o in outcomes if o.testcase == testcase]
    names = {o.short.split("[", 1)[0] for o in mine}
    return bool(mine) and len(names) == 1 and all(set(o.params) <= set(headline.columns) for o in mine)


def summaries(results: pandas.DataFrame, info: Mapping[str, Any],
              outcomes: list[TestOutcome]) -> list[Summary]:
    """One :class:`Summary` per test case (in the order tests ran)."""
    outcome_of = {o.nodeid: o.outcome for o in outcomes}
    order = list(dict.fromkeys([*(o.testcase for o in outcomes if o.testcase),
                                *(str(t) for t in results.get("testcase", []) if t is not None)]))
    out = []
    for testcase in order:
        rows = results[results["testcase"].astype(str) == testcase] if "testcase" in results else results.iloc[0:0]
        headline, notes = headline_for(testcase, rows, info)
        rows = headline.select(rows)
        header = ["test", "outcome", *headline.columns, *headline.figures]
        body, row_outcomes = _rows_for(rows, headline, outcome_of)
        recorded = set(rows["test"].astype(str)) if "test" in rows else set()
        for o in outcomes:  # tests of this experiment that recorded nothing
            if o.testcase == testcase and o.nodeid not in recorded:
                cells = [Cell(test_label(o.nodeid), test_label(o.nodeid)), Cell(o.outcome, o.outcome)]
                cells += [setting_cell(o.params.get(c)) for c in headline.columns]
                cells += [Cell("", None) for _ in headline.figures]
                body.append(cells)
                row_outcomes.append(o.outcome)
        if _test_is_redundant(testcase, headline, outcomes):  # the columns already say which test
            header = header[1:]
            body = [cells[1:] for cells in body]
        if headline.key:
            notes.insert(0, f"key figure: {headline.key}{_arrow(headline)}"
                            f"{'' if headline.declared else ' (default: declare HEADLINE in report_sections.py)'}")
        out.append(Summary(testcase, headline, header, body, row_outcomes, notes))
    return out


def test_figures(results: pandas.DataFrame, nodeid: str, info: Mapping[str, Any]) -> dict[str, float]:
    """The headline figures of one test's records: ``{figure: value}``, the median
    over its records when it recorded several rows."""
    import numpy as np

    rows = results[results["test"].astype(str) == nodeid] if "test" in results else results.iloc[0:0]
    if rows.empty:
        return {}
    testcase = str(rows["testcase"].iloc[0]) if "testcase" in rows else ""
    headline, _ = headline_for(testcase, rows, info)
    rows = headline.select(rows)
    out = {}
    for f in headline.figures:
        values = [v for v in (number(x) for x in rows[f]) if v is not None]
        if values:
            out[f] = float(np.median(values))
    return out


def testcases_of(run: RunData) -> set[str]:
    """Every experiment of the run: from run.json's tests and from the results."""
    names = {str(t.get("testcase")) for t in (run.info.get("tests") or {}).values() if t.get("testcase")}
    if "testcase" in run.results.columns:
        names |= {str(v) for v in run.results["testcase"].dropna()}
    return names


def run_summaries(run: RunData) -> tuple[list[TestOutcome], list[Summary]]:
    """Outcomes and per-experiment summaries of a loaded run, after importing each
    experiment's ``report_sections.py`` (its HEADLINE)."""
    from pytest_collab.report.outcomes import test_outcomes
    from pytest_collab.report.sections import load_testcase_sections

    load_testcase_sections(testcases_of(run), [run.info.get("rootdir", "."), "."])
    outcomes = test_outcomes(run.info, run.run.root)
    return outcomes, summaries(run.results, run.info, outcomes)
