"""split_any's report figures, for any model: the cut points on the x axis in execution
order (``cut_index``), the boundary's bytes against the uint8 input's, fidelity per
encoding (and held-out accuracy when the run trained on digits), the latency breakdown.
Each takes the run's results DataFrame (one row per test); legends sit beside the axes.
"""
from __future__ import annotations

import math
from typing import Any

TESTCASE = "split_any"
HEADLINE = {"columns": ["model", "point", "encoding"], "key": "p50_ms",
            "also": ["p99_ms", "wire_bytes", "boundary_vs_input", "top1_agreement", "max_logit_error", "accuracy"],
            "distributions": ["latency_ms"]}
STAGES = ("head", "encode", "transfer", "decode", "tail")
SECTION = "Split of any model: latency, boundary bytes and fidelity per cut point"


def applies(results: Any, run_info: Any = None) -> bool:
    return "testcase" in results and bool((results["testcase"] == TESTCASE).any())


def rows(results: Any, testcase: str = TESTCASE) -> Any:
    """The test case's rows in execution order of their cut (baselines at the ends)."""
    df = results[results["testcase"] == testcase].copy()
    df["order"] = df["cut_index"].astype(float).fillna(math.inf) if "cut_index" in df else 0.0
    df["label"] = df["model"] + " " + df["point"] + "/" + df["encoding"]
    return df.sort_values(["model", "order", "encoding"])


def _figure(n: int) -> Any:
    import matplotlib.figure

    return matplotlib.figure.Figure(figsize=(max(7, 0.6 * n + 2), 4.2), layout="constrained")


def latency_breakdown(results: Any) -> Any:
    """Median per-stage times stacked per configuration, with the analytic lower bound."""
    df = rows(results)
    fig = _figure(len(df))
    ax = fig.add_subplot()
    x = list(range(len(df)))
    bottom = [0.0] * len(df)
    for stage in STAGES:
        vals = df[f"{stage}_ms_p50"].fillna(0).tolist()
        ax.bar(x, vals, bottom=bottom, label=stage)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.plot(x, df["lower_bound_ms"].tolist(), "k_", markersize=18, label="lower bound")
    ax.set_xticks(x, df["label"].tolist(), rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("median latency (ms)")
    ax.set_title("Latency breakdown per cut point (execution order)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def boundary_bytes(results: Any) -> Any:
    """fp32 bytes crossing each cut and bytes on the wire, against the uint8 input's bytes."""
    df = rows(results)
    fig = _figure(len(df))
    ax = fig.add_subplot()
    x = list(range(len(df)))
    wire = [w if w > 0 else float("nan") for w in df["wire_bytes"].fillna(0).tolist()]
    ax.bar(x, wire, color="tab:blue", label="wire (encoded, compressed)")
    ax.plot(x, df["boundary_bytes"].tolist(), "o", color="tab:orange", label="boundary (fp32)")
    image = float(df["image_bytes"].max())
    ax.axhline(image, color="k", linestyle="--", label=f"uint8 input ({image / 1e3:.1f} kB)")
    ax.set_yscale("log")
    ax.set_xticks(x, df["label"].tolist(), rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("bytes per query")
    ax.set_title("Bytes crossing each cut (execution order)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def fidelity(results: Any) -> Any:
    """Worst top-1 agreement, largest logit error and (trained) worst accuracy per encoding."""
    import matplotlib.figure

    df = rows(results).dropna(subset=["top1_agreement"])
    has_acc = "accuracy" in df and df["accuracy"].notna().any()
    fig = matplotlib.figure.Figure(figsize=(11 if has_acc else 8, 3.5), layout="constrained")
    axes = fig.subplots(1, 3 if has_acc else 2)
    by = df.groupby("encoding")
    axes[0].bar(list(by.groups), by["top1_agreement"].min().tolist())
    axes[0].set_ylim(0, 1.05)
    axes[0].set_ylabel("top-1 agreement (worst cut)")
    axes[1].bar(list(by.groups), by["max_logit_error"].max().tolist(), color="tab:red")
    axes[1].set_ylabel("max |logit error|")
    axes[1].set_yscale("symlog", linthresh=1e-6)
    if has_acc:
        axes[2].bar(list(by.groups), by["accuracy"].min().tolist(), color="tab:green")
        axes[2].axhline(float(df["accuracy_ref"].max()), color="k", linestyle="--", label="unsplit")
        axes[2].set_ylim(0, 1.05)
        axes[2].set_ylabel("held-out accuracy (worst cut)")
        axes[2].legend(fontsize=8, frameon=False)
    fig.suptitle("Fidelity per encoding")
    return fig


def render(results: Any, metrics: Any = None, run_info: Any = None) -> list:
    return [latency_breakdown(results), boundary_bytes(results), fidelity(results)]


def register() -> None:
    from pytest_collab.report.sections import register_section

    register_section(SECTION, applies, render)


try:  # the report imports this file; registering is what importing it is for
    register()
except ImportError:  # report package not installed: the figure functions stay usable
    pass
