"""parallel_inference's report section: the scaling curve against the ideal line.

Ideal = N x the one-device aggregate throughput (the N = 1 row of the same model); with
no N = 1 row the ideal line is left out rather than guessed. A table shows utilisation,
stragglers and the latency tail per N.
"""
from __future__ import annotations

import json
from typing import Any


def applies(results: Any, run_info: Any = None) -> bool:
    return "testcase" in results and bool((results["testcase"] == "parallel_inference").any())


def _list(value: Any) -> list:
    return json.loads(value) if isinstance(value, str) else list(value)


def scaling(results: Any):
    """Aggregate throughput per N (one line per model) with N x one device dashed."""
    import matplotlib.figure

    df = results[results["testcase"] == "parallel_inference"].sort_values("n_devices")
    fig = matplotlib.figure.Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for model, rows in df.groupby("model"):
        ns, ips = rows["n_devices"].tolist(), rows["aggregate_ips"].tolist()
        ax.plot(ns, ips, "o-", label=f"{model} measured")
        one = rows[rows["n_devices"] == 1]["aggregate_ips"]
        if len(one):
            ax.plot(ns, [n * float(one.iloc[0]) for n in ns], "--", label=f"{model} ideal (N x one device)")
    ax.set_xlabel("devices N")
    ax.set_ylabel("aggregate throughput (inputs/s)")
    ax.set_title("Data-parallel inference: scaling against the ideal")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def table(results: Any):
    import pandas as pd

    df = results[results["testcase"] == "parallel_inference"].sort_values(["model", "n_devices"])
    rows = []
    for row in df.itertuples():
        util = _list(row.utilisation)
        rows.append({"model": row.model, "N": row.n_devices, "aggregate inputs/s": round(row.aggregate_ips, 1),
                     "utilisation": ", ".join(f"{u:.0%}" for u in util),
                     "straggler": f"{row.straggler} (+{row.straggler_lag_s * 1e3:.0f} ms)",
                     "p50 / p95 / p99 ms": f"{row.latency_p50_ms:.1f} / {row.latency_p95_ms:.1f} / "
                                           f"{row.latency_p99_ms:.1f}"})
    return pd.DataFrame(rows)


def render(results: Any, metrics: Any = None, run_info: Any = None) -> list:
    return [scaling(results), table(results)]


try:  # the report imports this file; registering is what importing it is for
    from pytest_collab.report.sections import register_section

    register_section("parallel_inference", applies, render)
except ImportError:  # report package not installed: the figure functions stay usable
    pass
