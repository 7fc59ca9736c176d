"""The report's figures: latency ECDFs and per-device resource timelines.

Figures are plain ``matplotlib.figure.Figure`` objects on an Agg canvas, never pyplot:
no global state, no display needed, safe in a thread. :func:`to_data_uri` turns one
into the inline base64 PNG the HTML embeds.
"""
from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    from matplotlib.figure import Figure

NETWORK_METRICS = ("net_rx_bytes", "net_tx_bytes", "host_net_rx_bytes", "host_net_tx_bytes")
_DPI = 90


def new_figure(rows: int = 1, width: float = 9.0, height: float = 3.2) -> tuple[Figure, Any]:
    """A figure with ``rows`` stacked axes sharing x, on the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, axes


def to_data_uri(fig: Figure) -> str:
    """The figure as ``data:image/png;base64,...`` (self-contained HTML)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def short_test(nodeid: str) -> str:
    """``path/test_x.py::test_x[a]`` → ``test_x[a]``: legends stay readable."""
    return str(nodeid).rsplit("::", 1)[-1]


_NOT_SETTINGS = ("run", "test", "testcase", "record", "timestamp")


def _setting_columns(rows: pandas.DataFrame) -> list[str]:
    """Columns that name a configuration rather than a measurement, varying in ``rows``.

    Text, integer and boolean scalars (``size_bytes``, ``transport``) split a test's
    samples into one distribution each; floats are taken to be measurements.
    """
    import pandas as pd

    from pytest_collab.report.data import list_columns

    skip = {*_NOT_SETTINGS, *list_columns(rows)}
    found = []
    for name in rows.columns:
        col = rows[name]
        if name in skip or pd.api.types.is_float_dtype(col) or \
                pd.api.types.is_datetime64_any_dtype(col):
            continue
        if col.astype(str).nunique() > 1:
            found.append(name)
    return found


def samples_by_test(results: pandas.DataFrame, column: str) -> dict[str, Any]:
    """Finite samples of a list column per test and setting (= one parameter set).

    Records of one test that differ in a setting column (message size, transport, ...)
    are kept apart; the records of one setting are concatenated.
    """
    import numpy as np

    groups: dict[str, list] = {}
    for test, rows in results.groupby("test", sort=False, observed=True):
        settings = _setting_columns(rows)
        for _, row in rows.iterrows():
            value = row[column]
            if value is None or np.ndim(value) == 0:
                continue
            arr = np.asarray(value, dtype=float)
            label = " ".join([short_test(str(test)), *(f"{k}={row[k]}" for k in settings)])
            groups.setdefault(label, []).append(arr[np.isfinite(arr)])
    return {label: np.concatenate(parts) for label, parts in groups.items()
            if sum(len(p) for p in parts)}


def ecdf_figure(results: pandas.DataFrame, column: str) -> Figure | None:
    """ECDF of one list-of-numbers column, one line per test and setting (param set)."""
    import numpy as np

    groups = samples_by_test(results, column)
    if not groups:
        return None
    fig, (ax,) = new_figure(height=3.6)
    for label, values in groups.items():
        xs = np.sort(values)
        ax.step(xs, np.arange(1, len(xs) + 1) / len(xs), where="post",
                label=f"{label} (n={len(xs)})")
    low = min(float(v.min()) for v in groups.values())
    high = max(float(v.max()) for v in groups.values())
    if low > 0 and high / low > 100:  # long tails: keep the bulk readable
        ax.set_xscale("log")
    ax.set_xlabel(column)
    ax.set_ylabel("fraction ≤ x")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3, which="both")
    ax.set_title(f"{column}: distribution per test and setting")
    ax.legend(fontsize="small", loc="lower right", ncols=2 if len(groups) > 8 else 1)
    return fig


def timeline_figure(metrics: pandas.DataFrame, metric: str, *, scale: float = 1.0,
                    ylabel: str | None = None) -> Figure | None:
    """``metric`` over the run, one axes per device, one colour per program (role).

    Each (test, program, pid) is its own line, so a program that ran in several tests
    is not joined across the gaps between them.
    """
    import pandas as pd

    rows = metrics[metrics["metric"].astype(str) == metric]
    if rows.empty:
        return None
    t0 = metrics["timestamp"].min()
    devices = sorted(rows["device"].astype(str).unique())
    roles = sorted(rows["role"].astype(str).unique())
    colors = {role: f"C{i % 10}" for i, role in enumerate(roles)}
    fig, axes = new_figure(rows=len(devices), height=2.4)
    fig.suptitle(f"{metric} per device and program")
    for ax, device in zip(axes, devices):
        mine = rows[rows["device"].astype(str) == device]
        seen: set[str] = set()
        keys = [mine["test"].astype(str), mine["role"].astype(str), mine["pid"]]
        for (_, role, _), line in mine.groupby(keys, sort=False, dropna=False):
            line = line.sort_values("timestamp")
            secs = (line["timestamp"] - t0) / pd.Timedelta(seconds=1)
            ax.plot(secs, line["value"] * scale, color=colors[role], lw=1.2,
                    label=None if role in seen else role)
            seen.add(role)
        ax.set_ylabel(ylabel or metric)
        ax.set_title(device, fontsize="medium", loc="left")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper right")
    axes[-1].set_xlabel("seconds since the first sample")
    return fig
