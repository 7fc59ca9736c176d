"""split_resnet's report figures, registered with the report when a run has its results.

Figures: stacked latency breakdown per split point, wire bytes per split point and
encoding (the uint8 image as the reference line every split must beat), fidelity per
encoding. The latency distribution is the report's own ECDF of ``latency_ms`` (drawn
once: HEADLINE names it). Each takes the run's results DataFrame (one row per test).
Legends sit beside the axes, never on the bars.
"""
from __future__ import annotations

from typing import Any

#: the summary table: one row per model, split point and encoding; median latency first
HEADLINE = {"columns": ["model", "split", "encoding"], "key": "p50_ms",
            "also": ["p99_ms", "qps_with_overhead", "wire_bytes", "top1_agreement", "max_abs_logit_error"],
            "distributions": ["latency_ms"]}

STAGES = ("head", "encode", "transfer", "decode", "tail")
ORDER = ("full_offload", "stem", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3",
         "layer4", "avgpool", "on_device")


SECTION = "Latency breakdown, bytes on the wire and fidelity per split point"


def applies(results: Any, run_info: Any = None) -> bool:
    return "testcase" in results and bool((results["testcase"] == "split_resnet").any())


def _rows(results: Any) -> Any:
    df = results[results["testcase"] == "split_resnet"].copy()
    df["label"] = df["split"] + "/" + df["encoding"]
    rank = {s: i for i, s in enumerate(ORDER)}
    return df.sort_values(by=["model", "split", "encoding"], key=lambda c: c.map(rank).fillna(50)
                          if c.name == "split" else c)


def latency_breakdown(results: Any):
    """Median per-stage times stacked per configuration, with the analytic lower bound."""
    import matplotlib.figure

    df = _rows(results)
    fig = matplotlib.figure.Figure(figsize=(max(7, 0.6 * len(df) + 2), 4.2), layout="constrained")
    ax = fig.add_subplot()
    bottom = [0.0] * len(df)
    x = range(len(df))
    for stage in STAGES:
        vals = df[f"{stage}_ms_p50"].fillna(0).tolist()
        ax.bar(x, vals, bottom=bottom, label=stage)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.plot(list(x), df["lower_bound_ms"].tolist(), "k_", markersize=18, label="lower bound")
    ax.set_xticks(list(x), (df["model"] + " " + df["label"]).tolist(), rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("median latency (ms)")
    ax.margins(y=0.08)
    ax.set_title("Latency breakdown per split point")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def wire_bytes(results: Any):
    """Bytes on the wire per split point and encoding, against the raw uint8 image size."""
    import matplotlib.figure
    from matplotlib.ticker import FuncFormatter

    df = _rows(results)
    fig = matplotlib.figure.Figure(figsize=(max(7, 0.6 * len(df) + 2), 4.2), layout="constrained")
    ax = fig.add_subplot()
    x = list(range(len(df)))
    wire = df["wire_bytes"].fillna(0).tolist()
    ax.bar(x, [w if w > 0 else float("nan") for w in wire], color="tab:blue", label="wire (compressed)")
    for i, w in enumerate(wire):
        if w <= 0:  # nothing sent (on-device): a log axis has no 0, say it instead
            ax.annotate("nothing sent", (i, 0.5), xycoords=("data", "axes fraction"), ha="center",
                        va="center", fontsize=8, rotation=90, color="0.35")
    ax.plot(x, df["raw_bytes"].tolist(), "o", color="tab:orange", label="raw head output")
    image = float(df["image_bytes"].max())
    ax.axhline(image, color="k", linestyle="--", label=f"uint8 image ({image / 1e3:.0f} kB)")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(_bytes_label))
    ax.set_xticks(x, (df["model"] + " " + df["label"]).tolist(), rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("bytes per query")
    ax.set_title("Bytes on the wire per split point and encoding")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def _bytes_label(value: float, _pos: Any = None) -> str:
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:g} {unit}"
    return f"{value:g} B"


def fidelity(results: Any):
    """Top-1 agreement and max |logit error| against the unsplit model, per encoding."""
    import matplotlib.figure

    df = _rows(results).dropna(subset=["top1_agreement"])
    fig = matplotlib.figure.Figure(figsize=(8, 3.5), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    by = df.groupby("encoding")
    ax1.bar(list(by.groups), by["top1_agreement"].min().tolist())
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("top-1 agreement (worst split)")
    ax2.bar(list(by.groups), by["max_abs_logit_error"].max().tolist(), color="tab:red")
    ax2.set_ylabel("max |logit error|")
    ax2.set_yscale("symlog", linthresh=1e-6)
    fig.suptitle("Fidelity per encoding")
    return fig


def render(results: Any, metrics: Any = None, run_info: Any = None) -> list:
    return [latency_breakdown(results), wire_bytes(results), fidelity(results)]


def register() -> None:
    from pytest_collab.report.sections import register_section

    register_section(SECTION, applies, render)


try:  # the report imports this file; registering is what importing it is for
    register()
except ImportError:  # report package not installed: the figure functions stay usable
    pass
