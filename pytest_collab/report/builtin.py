"""The built-in sections, written against the same API experiments use.

They come after every experiment's own summary and figures: latency distributions,
CPU and memory per device (small multiples, test spans shaded), network traffic
labelled with what the counters measured (a namespace, or the whole host).
"""
from __future__ import annotations

from typing import Any

from pytest_collab.report import resources
from pytest_collab.report.charts import Chart, colour_map, test_bands
from pytest_collab.report.data import list_columns
from pytest_collab.report.figures import samples_by_test
from pytest_collab.report.outcomes import short_test, test_label
from pytest_collab.report.sections import Section

NO_METRICS = "<p class='empty'>no metrics recorded</p>"
#: past this many lines an ECDF becomes small multiples, one chart per test
MAX_LINES = 20


def _distribution_columns(results: Any) -> list[str]:
    """List columns to draw: those the experiments' headlines name, else all but points in
    time (an ECDF of per-query ``t_start`` epochs says nothing)."""
    from pytest_collab.report.headline import declared_headline
    from pytest_collab.share.metric_rules import is_timestamp

    found = [c for c in list_columns(results) if not is_timestamp(c)]
    chosen: set[str] = set()
    testcases = set(results["testcase"].astype(str)) if "testcase" in results else set()
    declared = [h for h in map(declared_headline, sorted(testcases)) if h and h.distributions is not None]
    for h in declared:
        chosen.update(h.distributions or ())
    undeclared = testcases - {h.testcase for h in declared}
    return [c for c in found if c in chosen or undeclared]


def ecdf_charts(results: Any, column: str) -> list[Chart]:
    """Empirical CDF of one sample-list column, a line per test and setting."""
    import numpy as np

    groups = samples_by_test(results, column)
    if not groups:
        return []
    low = min(float(v.min()) for v in groups.values())
    high = max(float(v.max()) for v in groups.values())
    log = low > 0 and high / low > 20
    parts: list[dict[str, Any]] = [groups]
    if len(groups) > MAX_LINES:  # small multiples: one chart per test
        by_test: dict[str, dict[str, Any]] = {}
        for label, values in groups.items():
            by_test.setdefault(label.split(" ", 1)[0], {})[label] = values
        parts = list(by_test.values())
    charts = []
    for part in parts:
        title = f"{column}: distribution per test and setting (fraction of samples ≤ x)"
        chart = Chart(title, column + (" (log scale)" if log else ""), "fraction ≤ x", xlog=log, step=True,
                      yrange=(0.0, 1.02))
        for label, values in part.items():
            xs = np.sort(values)
            chart.add(f"{label} (n={len(xs)})", xs, np.arange(1, len(xs) + 1) / len(xs), key=label)
        charts.append(chart)
    return charts


def _latency(results: Any, metrics: Any, info: dict) -> list:
    return [c for column in _distribution_columns(results) for c in ecdf_charts(results, column)]


def device_charts(series: list[resources.Series], spans: list, title: str, ylabel: str,
                  colours: dict | None = None) -> list[Chart]:
    """Small multiples: one chart per device, a line per program, tests shaded."""
    from pytest_collab.report.charts import joined

    bands = test_bands(spans, test_label)
    colours = colours or colour_map(sorted({s.program for s in series}))
    charts = []
    for device in sorted({s.device for s in series}):
        chart = Chart(f"{title}: {device}", "seconds since the run's first sample", ylabel, bands=bands,
                      height=200, half=len({s.device for s in series}) > 1)
        mine = [s for s in series if s.device == device]
        for program in sorted({s.program for s in mine}):
            pieces = [(s.x, s.y) for s in sorted(mine, key=lambda s: s.x[0] if len(s.x) else 0)
                      if s.program == program]
            for x, y in joined(pieces):
                chart.add(program, x, y, key=program)
        chart.colours = colours
        charts.append(chart)
    return charts


def _resources(results: Any, metrics: Any, info: dict) -> list:
    if metrics.empty:
        return [NO_METRICS]
    spans = resources.test_spans(metrics)
    cpu, rss = resources.cpu_series(metrics), resources.rss_series(metrics)
    colours = colour_map(sorted({s.program for s in [*cpu, *rss]}))
    items: list = []
    table = resources.summary(metrics)
    if table is not None:
        table["test"] = table["test"].map(short_test)
        html = table.to_html(index=False, border=0, classes="data", na_rep="")
        items.append(html if len(table) <= 8 else
                     f"<details><summary>CPU and memory per test and program ({len(table)} rows)</summary>"
                     f"{html}</details>")
    items.append("<p class='note'>CPU % from the process tree's CPU seconds over intervals of at least "
                 "half the sampling period (100 = one core busy); shaded spans are the tests. "
                 "Drag to zoom, double-click to reset.</p>")
    items += device_charts(cpu, spans, "CPU %", "CPU %", colours)
    items += device_charts(rss, spans, "RSS", "RSS MB", colours)
    return items if (cpu or rss) else ["<p class='empty'>no CPU or memory samples recorded</p>"]


def _network(results: Any, metrics: Any, info: dict) -> list:
    if metrics.empty:
        return []
    present = set(metrics["metric"].astype(str).unique())
    spans = resources.test_spans(metrics)
    items: list = []
    for metric, (direction, scope) in resources.NETWORK_SCOPES.items():
        if metric not in present:
            continue
        series = resources.network_series(metrics, metric, resources.host_names(info))
        title = f"MB/s {direction}, {'host-wide' if metric.startswith('host_') else 'per namespace'}"
        items.append(f"<p class='note'><b>{metric}</b>: {scope}.</p>")
        items += device_charts(series, spans, title, "MB/s")
    return items


#: built-in sections; one whose render returns no items is left out of the page
BUILTIN_SECTIONS = [
    Section("Latency distributions", lambda r, i: bool(list_columns(r)), _latency),
    Section("CPU and memory per device and program", lambda r, i: True, _resources),
    Section("Network traffic", lambda r, i: True, _network),
]
