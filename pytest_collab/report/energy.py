"""Report sections on power and energy: a power timeline per device with its tests marked,
joules per test, and energy per inference against latency with the Pareto front.

Registered like an experiment's sections (:mod:`pytest_collab.report.sections`); the
numbers come from :mod:`pytest_collab.results.energy`. Every figure and table says
``board``: the readings cover the whole device, never one process.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pytest_collab.report.sections import register_section

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    from matplotlib.figure import Figure

#: results columns that name an inference configuration, in the order they are shown
CONFIG_COLUMNS = ("split", "cut", "encoding", "model", "batch")
#: table headers as a reader wants them
HEADERS = {"joules": "J", "mean_w": "mean W", "seconds": "window s", "covered_s": "s with data",
           "j_per_inference": "J / inference", "latency_ms": "latency ms"}
NO_POWER = ("<p class='empty'>no power recorded: no device had a power sensor or a "
            "<code>power_meter</code> (docs/energy.md)</p>")


def timeline_figure(rows: pandas.DataFrame, windows: pandas.DataFrame) -> Figure | None:
    """Board power per device over the run, each test's span shaded and named."""
    from pytest_collab.report.figures import new_figure, short_test
    from pytest_collab.results.energy import basis, power_timeline

    devices = sorted(d for d in rows["device"].unique() if basis(rows[rows["device"] == d]["metric"].unique()))
    if not devices:
        return None
    t0 = float(rows["t"].min())
    fig, axes = new_figure(rows=len(devices), height=2.4)
    fig.suptitle("Board power per device (scope: board, every process on it), tests shaded")
    for ax, device in zip(axes, devices):
        line = power_timeline(rows, device)
        chosen = basis(rows[rows["device"] == device]["metric"].unique())
        ax.plot(line["t"] - t0, line["watts"], lw=1.2, color="C0")
        mine = windows[windows["device"] == device].sort_values("min")
        for i, (_, w) in enumerate(mine.iterrows()):
            ax.axvspan(w["min"] - t0, w["max"] - t0, color="C%d" % (1 + i % 9), alpha=0.12, lw=0)
            ax.annotate(short_test(w["test"]), (w["min"] - t0, 0.03), xycoords=("data", "axes fraction"),
                        fontsize="x-small", va="bottom", clip_on=True)
        ax.set_ylabel("W")
        ax.set_ylim(0, max(1.0, float(line["watts"].max()) * 1.2) if len(line) else 1.0)
        ax.set_title("%s  (%s)" % (device, " + ".join(m[len("power_w."):] for m in chosen)),
                     fontsize="medium", loc="left")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("seconds since the first sample")
    return fig


def _power(results: Any, metrics: pandas.DataFrame, info: dict) -> list:
    from pytest_collab.report.figures import short_test
    from pytest_collab.results.energy import energy_per_test, power_rows, sample_windows

    rows = power_rows(metrics)
    if rows.empty:
        return [NO_POWER] if not metrics.empty else []
    items: list = []
    fig = timeline_figure(rows, sample_windows(metrics, ["test", "device"]))
    if fig is not None:
        items.append(fig)
    table = energy_per_test(metrics)
    if not table.empty:
        table = table.assign(test=table["test"].map(short_test))
        items.append(_rounded(table[["test", "device", "scope", "joules", "mean_w", "seconds",
                                     "covered_s", "method", "basis"]]).rename(columns=HEADERS))
    return items


def _rounded(table: pandas.DataFrame) -> pandas.DataFrame:
    return table.round({c: 3 for c in ("joules", "mean_w", "seconds", "covered_s", "j_per_inference",
                                       "latency_ms") if c in table.columns})


def config_columns(results: pandas.DataFrame) -> list[str]:
    return [c for c in CONFIG_COLUMNS if c in results.columns]


def per_inference(results: pandas.DataFrame, metrics: pandas.DataFrame) -> pandas.DataFrame:
    """One row per results row: J per inference summed over its devices, and latency."""
    from pytest_collab.results.energy import inference_energy

    by = config_columns(results)
    table = inference_energy(results, metrics, by)
    if table.empty:
        return table
    keys = ["row", "test", "window", *by]
    grouped = table.groupby(keys, sort=False, dropna=False)
    out = grouped.agg(j_per_inference=("j_per_inference", "sum"), latency_ms=("latency_ms", "first"),
                      devices=("device", lambda d: ",".join(sorted(map(str, d)))),
                      scope=("scope", "first"))
    return out.reset_index()


def pareto_figure(table: pandas.DataFrame, by: list[str]) -> Figure | None:
    """Energy per inference against latency, one point per configuration, front drawn."""
    from pytest_collab.report.figures import new_figure
    from pytest_collab.results.energy import pareto_front

    finite = table[[math.isfinite(x) and math.isfinite(y)
                    for x, y in zip(table["latency_ms"], table["j_per_inference"])]]
    if finite.empty:
        return None
    points = finite.groupby(by or ["test"], sort=True, dropna=False)[["latency_ms", "j_per_inference"]].median()
    labels = [" ".join(map(str, k if isinstance(k, tuple) else (k,))) for k in points.index]
    xy = list(zip(points["latency_ms"], points["j_per_inference"]))
    front = pareto_front(xy)
    fig, (ax,) = new_figure(height=4.0)
    ax.scatter([p[0] for p in xy], [p[1] for p in xy], color="C0", zorder=3, label="configuration (median)")
    for (x, y), label in zip(xy, labels):
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 5), fontsize="small")
    ax.step([xy[i][0] for i in front], [xy[i][1] for i in front], where="post", color="C3", lw=1.5,
            marker="o", markersize=11, markerfacecolor="none", label="Pareto front (lower is better)", zorder=2)
    ax.margins(0.15)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("latency per inference (ms)")
    ax.set_ylabel("energy per inference (J, board)")
    ax.set_title("Energy per inference against latency, per %s" % " / ".join(by or ["test"]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def _inference(results: pandas.DataFrame, metrics: pandas.DataFrame, info: dict) -> list:
    from pytest_collab.report.figures import short_test
    from pytest_collab.results.energy import power_rows

    if results.empty or power_rows(metrics).empty:
        return []
    table = per_inference(results, metrics)
    if table.empty:
        return []
    by = config_columns(results)
    items: list = []
    fig = pareto_figure(table, by)
    if fig is not None:
        items.append(fig)
    if (table["window"] == "test").any():
        items.append("<p>Rows without <code>t_start</code>/<code>t_end</code> use their whole test "
                     "(start-up included) as the window.</p>")
    table = table.assign(test=table["test"].map(short_test))
    items.append(_rounded(table[["test", *by, "devices", "scope", "window", "j_per_inference", "latency_ms"]])
                 .rename(columns=HEADERS))
    if {"round", "client"} <= set(results.columns):
        items.extend(_per_round(results, metrics))
    return items


def _per_round(results: pandas.DataFrame, metrics: pandas.DataFrame) -> list:
    """Federated: J per round per client, where client rows mark their round's window."""
    from pytest_collab.results.energy import inference_energy

    rows = results[results["client"].notna()]
    table = inference_energy(rows, metrics, ("round", "client"), device_column="client")
    if table.empty or not (table["window"] == "marked").any():
        return []
    table = table[table["window"] == "marked"]
    return ["<p>Energy per round per client (board of the client's device).</p>",
            _rounded(table[["round", "client", "device", "scope", "joules", "seconds", "method"]])
            .rename(columns=HEADERS)]


def _has_rows(results: Any, info: dict) -> bool:
    return not results.empty


register_section("Power and energy per device", lambda results, info: True, _power)
register_section("Energy per inference", _has_rows, _inference)
