"""Compare N runs at once: each row's metrics across the runs, and the last against the first.

With three or more runs the earlier ones also measure how much a number moves between
repeats of the same experiment: that spread (:func:`~.metric_rules.runs_spread` over
all runs but the last) sets each metric's default tolerance when the last run is judged
against the first, so a noisy metric gets room and a steady one does not.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_collab.share.compare import (
    Comparison,
    aligned_rows,
    compare_frames,
    direction,
    is_metric_column,
    key_columns,
    load_results,
    sort_key,
)
from pytest_collab.share.metric_rules import runs_spread

if TYPE_CHECKING:  # pragma: no cover
    import pandas


@dataclass
class TrendRow:
    testcase: str
    test: str
    key: dict[str, Any]
    metric: str
    values: list[float | None]   # one per run, None where the run lacks the row

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.key.items()) or "-"

    @property
    def direction(self) -> str | None:
        return direction(self.metric)


@dataclass
class Trend:
    labels: list[str]
    rows: list[TrendRow]
    comparison: Comparison   # the last run against the first, tolerances from the spread


def _value(value: Any) -> float | None:
    from pytest_collab.report.summary import number

    return number(value)


def _headline_figures(results: pandas.DataFrame, info: dict[str, Any]) -> list[str] | None:
    """The figures the experiments declared, key figures first (None when none declared any)."""
    from pytest_collab.report.headline import declared_headline

    if "testcase" not in results.columns:
        return None
    found = [declared_headline(str(tc)) for tc in set(results["testcase"].dropna())]
    figures = list(dict.fromkeys(f for h in found if h for f in h.figures))
    return figures or None


def trend_frames(runs: list[tuple[pandas.DataFrame, dict[str, Any], str]],
                 tolerances: dict[str, Any] | None = None, all_metrics: bool = False) -> Trend:
    """Align every run's rows; metrics are the headline figures (or all, ``all_metrics``)."""
    if len(runs) < 2:
        from pytest_collab.errors import CollabError

        raise CollabError("compare needs at least two runs: a baseline and one to compare with it")
    extra = list((tolerances or {}).get("keys", []))
    keys = sorted({k for frame, info, _ in runs for k in key_columns(frame, info, extra)})
    aligned = [aligned_rows(frame, keys) for frame, _, _ in runs]
    wanted = None if all_metrics else _headline_figures(runs[-1][0], runs[-1][1])
    metrics = [c for c in dict.fromkeys(c for frame, _, _ in runs for c in frame.columns)
               if is_metric_column(c, keys) and (wanted is None or c in wanted)]
    if wanted:  # the experiment's own order: its key figure first
        metrics.sort(key=list(wanted).index)
    rows: list[TrendRow] = []
    spreads: dict[tuple, float] = {}
    for key in sorted({k for run in aligned for k in run}, key=sort_key):
        described = {k: v for k, v in zip(keys, key[2:-1]) if v is not None}
        for metric in metrics:
            values = [_value(run[key].get(metric)) if key in run else None for run in aligned]
            if all(v is None for v in values):
                continue
            rows.append(TrendRow(key[0], key[1], described, metric, values))
            spread = runs_spread(values[:-1])
            if spread is not None:
                spreads[(key, metric)] = spread
    (first, info_first, label_first), (last, info_last, label_last) = runs[0], runs[-1]
    cmp = compare_frames(first, info_first, last, info_last, tolerances, label_first, label_last,
                         spreads=spreads if len(runs) > 2 else None, keys=keys)
    return Trend([label for _, _, label in runs], rows, cmp)


def trend_runs(run_dirs: list[Path], tolerances: dict[str, Any] | None = None,
               all_metrics: bool = False) -> Trend:
    """:func:`trend_frames` of run folders, labelled with their run ids."""
    runs = []
    for run_dir in run_dirs:
        frame, info = load_results(run_dir)
        runs.append((frame, info, str(info.get("run_id", Path(run_dir).name))))
    return trend_frames(runs, tolerances, all_metrics)
