"""Report figures of any Flower run, chosen by the columns present (not by test-case name).

Round rows (``kind == "round"`` with a ``round`` column) give learning curves: every
accuracy/loss column against round, one line per test. Client rows (``kind ==
"client"`` with ``train_time_s``) give training time per client and round, with the
straggler named. Registered on import through the public API of
:mod:`pytest_collab.report.sections` (also as the ``pytest_collab.report_sections``
entry point ``flower``).
"""
from __future__ import annotations

import re
from typing import Any

CURVE = re.compile(r"(acc|loss)", re.IGNORECASE)


def _rows(results: Any, kind: str) -> Any:
    if "kind" not in results or "round" not in results:
        return results.iloc[0:0]
    return results[results["kind"] == kind]


def curve_columns(results: Any) -> list[str]:
    """The numeric accuracy/loss columns that round rows fill."""
    rounds = _rows(results, "round")
    return [c for c in rounds.columns if CURVE.search(str(c)) and rounds[c].notna().any()
            and str(rounds[c].dtype).startswith(("float", "int"))]


def has_rounds(results: Any, run_info: dict) -> bool:
    return bool(curve_columns(results))


def has_client_times(results: Any, run_info: dict) -> bool:
    clients = _rows(results, "client")
    return "train_time_s" in clients and clients["train_time_s"].notna().any()


def learning_curves(results: Any, metrics: Any, run_info: dict) -> list:
    """Each accuracy/loss column of the round rows against round, one line per test."""
    from matplotlib.figure import Figure

    rounds = _rows(results, "round")
    cols = curve_columns(results)
    fig = Figure(figsize=(min(5 * len(cols), 15), 3.8))
    axes = fig.subplots(1, len(cols), squeeze=False)[0]
    for ax, col in zip(axes, cols):
        for test, grp in rounds.dropna(subset=[col]).groupby("test"):
            grp = grp.sort_values("round")
            ax.plot(grp["round"], grp[col], marker="o", label=str(test).split("::")[-1])
        ax.set(xlabel="round", ylabel=col, title=col)
        if "acc" in col.lower():
            ax.set_ylim(0, 1)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return [fig, "<p>Per-round metrics of each Flower run: the strategy's aggregated "
                 "ClientApp metrics (<code>train_*</code>, <code>evaluate_*</code>/<code>eval_*</code>) "
                 "and the ServerApp's own evaluation (<code>server_*</code>, <code>global_*</code>); "
                 "round 0 is the initial model.</p>"]


def stragglers(results: Any, metrics: Any, run_info: dict) -> list:
    """Local training time per client and round; a lost client is marked with an x."""
    from matplotlib.figure import Figure

    clients = _rows(results, "client").dropna(subset=["train_time_s"])
    items: list = []
    for test, grp in clients.groupby("test"):
        fig = Figure(figsize=(6, 3.5))
        ax = fig.subplots()
        for name, rows in grp.groupby("client"):
            rows = rows.sort_values("round")
            ax.plot(rows["round"], rows["train_time_s"], marker="o", label=str(name))
            if "status" in rows:
                lost = rows[rows["status"] == "failed"]
                ax.plot(lost["round"], [0] * len(lost), "x", color="red", markersize=10)
        ax.set(xlabel="round", ylabel="local training time (s)", title=str(test).split("::")[-1])
        ax.legend(fontsize=7)
        fig.tight_layout()
        items.append(fig)
        slow = grp.groupby("client")["train_time_s"].mean().sort_values()
        if len(slow):
            items.append(f"<p>Straggler: <b>{slow.index[-1]}</b> "
                         f"({slow.iloc[-1]:.2f} s mean train time per round).</p>")
    return items


def register() -> None:
    from pytest_collab.report.sections import register_section

    register_section("Federated: metrics per round", has_rounds, learning_curves)
    register_section("Federated: per-client time per round", has_client_times, stragglers)


try:
    register()
except ImportError:  # the report package is absent: runs still work
    pass
