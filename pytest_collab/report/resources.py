"""Per-program resource series from ``metrics.parquet``: CPU %, RSS, network rates.

One home for "what a program used": the report's timelines, its resource table and the
terminal summary all read these numbers. CPU % comes from the cumulative CPU seconds
(``cpu_user_s + cpu_system_s``) over sound intervals (:mod:`.rates`); runs without
them fall back to the wrapper's ``cpu_percent`` with too-short intervals dropped.

Network counters are labelled as measured: ``net_*`` counts the program's own network
namespace (a container), ``host_net_*`` counts the whole host, every program on it
included; host-wide series are shown once per device, never as a program's traffic.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_collab.report import rates

if TYPE_CHECKING:  # pragma: no cover
    import pandas

#: metric -> (label, scope text)
NETWORK_SCOPES = {
    "net_rx_bytes": ("received", "per network namespace (the program's own container)"),
    "net_tx_bytes": ("sent", "per network namespace (the program's own container)"),
    "host_net_rx_bytes": ("received", "host-wide (every program on the device's host, not only this one)"),
    "host_net_tx_bytes": ("sent", "host-wide (every program on the device's host, not only this one)"),
}


@dataclass
class Series:
    """One program's (or, host-wide, one device's) values over one test."""

    device: str
    program: str
    test: str
    x: Any       # seconds since the run's first sample
    y: Any


def _seconds(metrics: pandas.DataFrame) -> Any:
    import pandas as pd

    t0 = metrics["timestamp"].min()
    return (metrics["timestamp"] - t0) / pd.Timedelta(seconds=1)


def _groups(rows: pandas.DataFrame, keys: tuple[str, ...]) -> Any:
    cols = [rows[k].astype(str) if k != "pid" else rows[k] for k in keys]
    return rows.groupby(cols, sort=False, dropna=False)


def _wide(metrics: pandas.DataFrame, names: list[str]) -> pandas.DataFrame:
    """Rows of ``names`` pivoted to one row per sample (device, program, test, pid, time)."""
    rows = metrics[metrics["metric"].astype(str).isin(names)].copy()
    if rows.empty:
        return rows
    rows["secs"] = _seconds(metrics).loc[rows.index]
    for k in ("device", "program", "test", "metric"):
        rows[k] = rows[k].astype(str)
    wide = rows.pivot_table(index=["device", "program", "test", "pid", "secs"], columns="metric",
                            values="value", aggfunc="last", observed=True)
    return wide.reset_index()


def cpu_series(metrics: pandas.DataFrame) -> list[Series]:
    """CPU % of each program's process tree per test (100 = one core busy)."""
    counters = _wide(metrics, ["cpu_user_s", "cpu_system_s"])
    out: list[Series] = []
    if not counters.empty and {"cpu_user_s", "cpu_system_s"} <= set(counters.columns):
        for (device, program, test, _), g in _groups(counters, ("device", "program", "test", "pid")):
            g = g.sort_values("secs")
            t, r = rates.sound_rates(g["secs"], g["cpu_user_s"].fillna(0) + g["cpu_system_s"].fillna(0))
            if len(t):
                out.append(Series(device, program, test, t, r * 100.0))
        return out
    percent = _wide(metrics, ["cpu_percent"])
    if percent.empty:
        return out
    for (device, program, test, _), g in _groups(percent, ("device", "program", "test", "pid")):
        g = g.sort_values("secs")
        t, v = rates.sound_samples(g["secs"], g["cpu_percent"])
        out.append(Series(device, program, test, t, v))
    return out


def rss_series(metrics: pandas.DataFrame) -> list[Series]:
    """Resident memory (MB) of each program's process tree per test."""
    wide = _wide(metrics, ["rss_bytes"])
    out: list[Series] = []
    if wide.empty:
        return out
    for (device, program, test, _), g in _groups(wide, ("device", "program", "test", "pid")):
        g = g.sort_values("secs")
        if len(g) > 1 and g["rss_bytes"].iloc[-1] == 0:
            g = g.iloc[:-1]  # the exit sample of a zombie reads 0: the program ended, it did not shrink
        out.append(Series(device, program, test, g["secs"].to_numpy(), g["rss_bytes"].to_numpy() / 1e6))
    return out


def host_names(info: dict[str, Any]) -> dict[str, str]:
    """device -> the host its host-wide counters describe (the local lab's devices all
    share this machine; devices at one address share that host)."""
    return {str(d.get("name")): "this machine" if d.get("transport") == "local"
            else str(d.get("address") or d.get("name"))
            for d in (info.get("profile") or {}).get("devices") or []}


def network_series(metrics: pandas.DataFrame, metric: str,
                   hosts: dict[str, str] | None = None) -> list[Series]:
    """MB/s of one network counter over sound intervals.

    Host-wide counters are the same for every program of a host, so each host gets one
    series per test (program ``host``; devices sharing a host, per ``hosts``, are one);
    namespace counters stay per program.
    """
    wide = _wide(metrics, [metric])
    out: list[Series] = []
    if wide.empty:
        return out
    if not metric.startswith("host_"):
        for (device, program, test, _), g in _groups(wide, ("device", "program", "test", "pid")):
            t, r = rates.sound_rates(g.sort_values("secs")["secs"], g.sort_values("secs")[metric])
            if len(t):
                out.append(Series(device, program, test, t, r / 1e6))
        return out
    hosts = hosts or {}
    wide["host"] = wide["device"].map(lambda d: hosts.get(d, d))
    for host, on_host in _groups(wide, ("host",)):
        devices = sorted(on_host["device"].unique())
        label = devices[0] if len(devices) == 1 else f"{host[0]} ({', '.join(devices)})"
        for test, g in _groups(on_host, ("test",)):
            first = sorted(g["device"].unique())[0]  # one device's reading speaks for its host
            g = g[g["device"] == first].sort_values("secs").drop_duplicates("secs")
            t, r = rates.sound_rates(g["secs"], g[metric])
            if len(t):
                out.append(Series(label, "host", test[0], t, r / 1e6))
    return out


def summary(metrics: pandas.DataFrame) -> pandas.DataFrame | None:
    """Per test and program: median and peak CPU % (sound intervals), peak RSS MB."""
    import numpy as np
    import pandas as pd

    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for s in cpu_series(metrics):
        entry = rows.setdefault((s.test, s.device, s.program), {})
        values = np.concatenate([entry.get("_cpu", np.array([])), np.asarray(s.y, dtype=float)])
        entry["_cpu"] = values
    for s in rss_series(metrics):
        entry = rows.setdefault((s.test, s.device, s.program), {})
        entry["RSS MB peak"] = max(entry.get("RSS MB peak", 0.0), float(np.nanmax(s.y)))
    if not rows:
        return None
    table = []
    for (test, device, program), entry in rows.items():
        cpu = entry.pop("_cpu", np.array([]))
        table.append({"test": test, "device": device, "program": program,
                      "CPU % median": round(float(np.median(cpu)), 1) if cpu.size else None,
                      "CPU % peak": round(float(np.max(cpu)), 1) if cpu.size else None,
                      "RSS MB peak": round(entry["RSS MB peak"], 1) if "RSS MB peak" in entry else None})
    return pd.DataFrame(table)


def test_spans(metrics: pandas.DataFrame) -> list[tuple[str, float, float]]:
    """``(test, first, last)`` seconds of every test's samples, in time order."""
    if metrics.empty:
        return []
    secs = _seconds(metrics)
    frame = metrics.assign(secs=secs, test=metrics["test"].astype(str))
    spans = frame.groupby("test", sort=False)["secs"].agg(["min", "max"]).sort_values("min")
    return [(str(t), float(r["min"]), float(r["max"])) for t, r in spans.iterrows()]
