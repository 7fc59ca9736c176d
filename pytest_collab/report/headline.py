"""Each experiment's headline: which columns say what a row is, and its key figure.

A test case declares it in ``testcases/<name>/report_sections.py``::

    HEADLINE = {"columns": ["transport", "size_bytes"], "key": "throughput_mbps",
                "also": ["rtt_p50_ms", "rtt_p99_ms"]}

or calls :func:`register_headline` (an installed package, a conftest). Without one, the
default takes the test parameters and the settings that vary between rows as columns,
and the measured numbers (floats; a sample list by its median) as figures, the first
with a known direction as the key. The report's first table, the terminal summary,
the JUnit properties and the pytest-html row all read :func:`headline_for`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_collab.errors import CollabError
from pytest_collab.results.records import PROVENANCE, RESULTS_LEAD

if TYPE_CHECKING:  # pragma: no cover
    import pandas

MAX_FIGURES = 5
_KEYS = {"columns", "key", "also", "better", "distributions", "rows"}


@dataclass(frozen=True)
class Headline:
    testcase: str
    columns: tuple[str, ...]
    key: str | None
    also: tuple[str, ...] = ()
    better: str | None = None   # "higher" | "lower" | None (from the key's name)
    declared: bool = False
    distributions: tuple[str, ...] | None = None   # sample lists drawn as ECDFs (None: all)
    rows: tuple[tuple[str, Any], ...] = ()   # only records with these values are summarised

    def select(self, frame: pandas.DataFrame) -> pandas.DataFrame:
        """The records the summary shows (all, or those matching ``rows``)."""
        for column, value in self.rows:
            if column not in frame.columns:
                return frame.iloc[0:0]
            frame = frame[frame[column].astype(str) == str(value)]
        return frame

    @property
    def figures(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*(k for k in [self.key] if k), *self.also]))

    def direction(self) -> str | None:
        from pytest_collab.share.compare import direction

        return self.better or (direction(self.key) if self.key else None)


_HEADLINES: dict[str, Headline] = {}


def register_headline(testcase: str, *, key: str, columns: "list[str] | tuple[str, ...]" = (),
                      also: "list[str] | tuple[str, ...]" = (), better: str | None = None,
                      distributions: "list[str] | tuple[str, ...] | None" = None,
                      rows: Mapping[str, Any] | None = None) -> Headline:
    """Declare ``testcase``'s headline (replaces an earlier one).

    ``distributions`` names the sample-list columns the report draws as ECDFs (default:
    every list column), so one distribution is not drawn once per derived column.
    ``rows`` (``{"kind": "run"}``) keeps the summary to one kind of record when an
    experiment records several (per round, per client, per run).
    """
    if better not in (None, "higher", "lower"):
        raise CollabError(f"headline of {testcase!r}: better={better!r}; use 'higher', 'lower' or leave it out")
    headline = Headline(testcase, tuple(columns), key, tuple(also), better, declared=True,
                        distributions=None if distributions is None else tuple(distributions),
                        rows=tuple((rows or {}).items()))
    _HEADLINES[testcase] = headline
    return headline


def headline_from_mapping(testcase: str, mapping: Any, source: str) -> Headline:
    """A ``HEADLINE = {...}`` declaration checked; errors name ``source`` and the fix."""
    if not isinstance(mapping, Mapping) or "key" not in mapping or not set(mapping) <= _KEYS:
        raise CollabError(f"{source}: HEADLINE must be a dict with 'key' (the key figure's column) and "
                          f"optionally 'columns', 'also', 'better', 'distributions', 'rows'; got {mapping!r}")
    for name in ("columns", "also", "distributions"):
        value = mapping.get(name, ())
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise CollabError(f"{source}: HEADLINE[{name!r}] must be a list of column names, got {value!r}")
    return register_headline(testcase, key=str(mapping["key"]), columns=list(mapping.get("columns", ())),
                             also=list(mapping.get("also", ())), better=mapping.get("better"),
                             distributions=mapping.get("distributions"), rows=_rows_filter(mapping, source))


def _rows_filter(mapping: Mapping[str, Any], source: str) -> Mapping[str, Any] | None:
    rows = mapping.get("rows")
    if rows is not None and not isinstance(rows, Mapping):
        raise CollabError(f"{source}: HEADLINE['rows'] must map a column to the value it keeps, "
                          f"e.g. {{'kind': 'run'}}; got {rows!r}")
    return rows


def declared_headline(testcase: str) -> Headline | None:
    """The headline ``testcase`` declared, if any."""
    return _HEADLINES.get(testcase)


def unregister_headline(testcase: str) -> None:
    _HEADLINES.pop(testcase, None)


def _lists(rows: pandas.DataFrame) -> list[str]:
    from pytest_collab.report.data import list_columns

    return list_columns(rows)


def default_headline(testcase: str, rows: pandas.DataFrame, info: Mapping[str, Any]) -> Headline:
    """Parameters and varying settings as columns, measured numbers as figures."""
    import pandas as pd

    from pytest_collab.share.metric_rules import direction, is_timestamp

    lists = _lists(rows)
    params = [p for t in (info.get("tests") or {}).values() if t.get("testcase", testcase) == testcase
              for p in (t.get("params") or {})]
    columns = [c for c in dict.fromkeys(params) if c in rows.columns]
    figures: list[str] = []
    for name in rows.columns:
        if name in RESULTS_LEAD or name in PROVENANCE or name in columns or is_timestamp(name):
            continue
        col = rows[name]
        if name in lists:
            figures.append(name)
        elif pd.api.types.is_bool_dtype(col):
            continue  # a measured flag (p90_low_confidence): neither a setting nor a figure
        elif pd.api.types.is_float_dtype(col):
            figures.append(name)
        elif col.astype(str).nunique() > 1 and not pd.api.types.is_datetime64_any_dtype(col):
            columns.append(name)
    ranked = sorted(figures, key=lambda f: direction(f) is None)  # stable: keeps record order
    chosen = ranked[:MAX_FIGURES]
    return Headline(testcase, tuple(columns), chosen[0] if chosen else None, tuple(chosen[1:]))


def headline_for(testcase: str, rows: pandas.DataFrame, info: Mapping[str, Any]) -> tuple[Headline, list[str]]:
    """The declared headline (columns it names that the run lacks are left out, with a
    note), else the default."""
    declared = _HEADLINES.get(testcase)
    if declared is None:
        return default_headline(testcase, rows, info), []
    missing = [c for c in (*declared.columns, *declared.figures) if c not in rows.columns]
    if not missing:
        return declared, []
    keep = set(rows.columns)
    key = declared.key if declared.key in keep else None
    fixed = Headline(testcase, tuple(c for c in declared.columns if c in keep), key,
                     tuple(c for c in declared.also if c in keep), declared.better, True,
                     declared.distributions, declared.rows)
    return fixed, [f"{testcase}: headline columns not in this run's results: {', '.join(missing)}"]
