"""Report figures of testcases/federated: learning curves per configuration, stragglers.

Registered on import (conftest.py imports this module). Figures are built with
matplotlib's object API, so no pyplot state leaks between reports.
"""

from __future__ import annotations

from typing import Any

CONFIG = ["clients", "alpha", "rounds"]

#: the summary table: one row per federated run (its "run" record), final accuracy first
HEADLINE = {"rows": {"kind": "run"}, "columns": ["clients", "alpha", "rounds"],
            "key": "final_accuracy", "also": ["final_loss", "run_time_s"], "distributions": []}


def _rows(results: Any, kind: str) -> Any:
    df = results[results["testcase"] == "federated"] if "testcase" in results else results
    return df[df["kind"] == kind] if "kind" in df else df.iloc[0:0]


def _label(key: Any) -> str:
    clients, alpha, rounds = key
    if clients is None or clients != clients:  # no matrix parameters: the client-loss scenario
        return "client-loss scenario"
    part = "IID" if alpha is None or alpha != alpha else f"alpha={alpha:g}"
    return f"{int(clients)} clients, {part}, {int(rounds)} rounds"


def _integer_rounds(*axes: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def applies(results: Any, run_info: dict) -> bool:
    return "kind" in results and len(_rows(results, "round")) > 0


def learning_curves(results: Any, metrics: Any, run_info: dict) -> list:
    """Held-out accuracy and loss of the global model against round, one line per config."""
    from matplotlib.figure import Figure

    rounds = _rows(results, "round").dropna(subset=["global_accuracy"])
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    acc, loss = fig.subplots(1, 2)
    for key, grp in rounds.groupby(CONFIG, dropna=False):
        grp = grp.sort_values("round")
        acc.plot(grp["round"], grp["global_accuracy"], marker="o", label=_label(key))
        loss.plot(grp["round"], grp["global_loss"], marker="o", label=_label(key))
    acc.set(xlabel="round", ylabel="held-out accuracy", ylim=(0, 1.02), title="Global accuracy")
    _integer_rounds(acc, loss)
    loss.set(xlabel="round", ylabel="held-out cross-entropy", title="Global loss")
    handles, labels = acc.get_legend_handles_labels()
    if handles:  # one legend for both panels, below them: never on the curves
        fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=8,
                   frameon=False)
    return [fig, "<p>Global model on the server's held-out set; round 0 is the initial model.</p>"]


def stragglers(results: Any, metrics: Any, run_info: dict) -> list:
    """Local training time per client and round; a lost client is marked with an x."""
    from matplotlib.figure import Figure

    clients = _rows(results, "client")
    items: list = []
    for key, grp in clients.groupby(CONFIG, dropna=False):
        fig = Figure(figsize=(7, 3.5), layout="constrained")
        ax = fig.subplots()
        for name, rows in grp.groupby("client"):
            rows = rows.sort_values("round")
            ax.plot(rows["round"], rows["train_time_s"], marker="o", label=str(name))
            lost = rows[rows["status"] == "failed"]
            ax.plot(lost["round"], [0] * len(lost), "x", color="red", markersize=10)
        ax.set(xlabel="round", ylabel="local training time (s)", title=_label(key))
        _integer_rounds(ax)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        items.append(fig)
        slow = grp.groupby("client")["train_time_s"].mean().sort_values()
        if len(slow):
            items.append(f"<p>Straggler: <b>{slow.index[-1]}</b> "
                         f"({slow.iloc[-1]:.2f} s mean train time per round).</p>")
    return items


try:
    from pytest_collab.report.sections import register_section
except ImportError:  # report package absent: the experiment still runs
    pass
else:
    register_section("Federated: accuracy and loss per round", applies, learning_curves)
    register_section("Federated: per-client time per round", applies, stragglers)
