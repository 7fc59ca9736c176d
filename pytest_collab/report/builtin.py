"""The built-in figure sections, written against the same API experiments use."""
from __future__ import annotations

from typing import Any

from pytest_collab.report import figures
from pytest_collab.report.data import list_columns
from pytest_collab.report.sections import Section

NO_METRICS = "<p class='empty'>no metrics recorded</p>"


def _latency(results: Any, metrics: Any, info: dict) -> list:
    found = [figures.ecdf_figure(results, column) for column in list_columns(results)]
    return [fig for fig in found if fig is not None]


def resource_summary(metrics: Any) -> Any:
    """Per test and program: median and peak CPU %, peak RSS in MB (None if unsampled)."""
    rows = metrics[metrics["metric"].astype(str).isin(["cpu_percent", "rss_bytes"])]
    if rows.empty:
        return None
    keys = [rows[c].astype(str) for c in ("test", "device", "role", "metric")]
    stats = rows.groupby(keys)["value"].agg(["median", "max"]).unstack("metric")
    out = stats.index.to_frame(index=False).rename(columns={"role": "program"})
    for label, (stat, metric, scale) in {
            "CPU % median": ("median", "cpu_percent", 1.0), "CPU % peak": ("max", "cpu_percent", 1.0),
            "RSS MB peak": ("max", "rss_bytes", 1e-6)}.items():
        if (stat, metric) in stats.columns:
            out[label] = (stats[(stat, metric)].to_numpy() * scale).round(1)
    return out


def _resources(results: Any, metrics: Any, info: dict) -> list:
    if metrics.empty:
        return [NO_METRICS]
    items = [resource_summary(metrics),
             figures.timeline_figure(metrics, "cpu_percent", ylabel="CPU %"),
             figures.timeline_figure(metrics, "rss_bytes", scale=1e-6, ylabel="RSS MB")]
    return [item for item in items if item is not None] or [
        "<p class='empty'>no cpu_percent or rss_bytes samples recorded</p>"]


def _has_network(metrics: Any) -> bool:
    return not metrics.empty and metrics["metric"].astype(str).isin(figures.NETWORK_METRICS).any()


def _network(results: Any, metrics: Any, info: dict) -> list:
    if not _has_network(metrics):
        return []
    present = set(metrics["metric"].astype(str).unique())
    return [figures.timeline_figure(metrics, name, scale=1e-6, ylabel="MB, cumulative")
            for name in figures.NETWORK_METRICS if name in present]


#: built-in sections; one whose render returns no items is left out of the page
BUILTIN_SECTIONS = [
    Section("Latency distributions", lambda r, i: bool(list_columns(r)), _latency),
    Section("CPU and memory per device and program", lambda r, i: True, _resources),
    Section("Network bytes", lambda r, i: True, _network),
]
