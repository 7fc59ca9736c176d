"""split_resnet's report figures, registered with the report when a run has its results.

Figures: stacked latency breakdown per split point, wire bytes per split point and
encoding (the uint8 image as the reference line every split must beat), fidelity per
encoding, and the latency CDF. Each takes the run's results DataFrame (one row per test).
"""
from __future__ import annotations

from typing import Any

STAGES = ("head", "encode", "transfer", "decode", "tail")
ORDER = ("full_offload", "stem", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3",
         "layer4", "avgpool", "on_device")


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
    fig = matplotlib.figure.Figure(figsize=(max(6, 0.55 * len(df)), 4))
    ax = fig.add_subplot()
    bottom = [0.0] * len(df)
    x = range(len(df))
    for stage in STAGES:
        vals = df[f"{stage}_ms_p50"].fillna(0).tolist()
        ax.bar(x, vals, bottom=bottom, label=stage)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.plot(list(x), df["lower_bound_ms"].tolist(), "k_", markersize=18, label="lower bound")
    ax.set_xticks(list(x), (df["model"] + " " + df["label"]).tolist(), rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("median latency (ms)")
    ax.set_title("Latency breakdown per split point")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def wire_bytes(results: Any):
    """Bytes on the wire per split point and encoding, against the raw uint8 image size."""
    import matplotlib.figure

    df = _rows(results)
    fig = matplotlib.figure.Figure(figsize=(max(6, 0.55 * len(df)), 4))
    ax = fig.add_subplot()
    x = list(range(len(df)))
    ax.bar(x, df["wire_bytes"].tolist(), color="tab:blue", label="wire (compressed)")
    ax.plot(x, df["raw_bytes"].tolist(), "o", color="tab:orange", label="raw head output")
    image = float(df["image_bytes"].max())
    ax.axhline(image, color="k", linestyle="--", label=f"uint8 image ({image / 1e3:.0f} kB)")
    ax.set_yscale("symlog", linthresh=1e3)
    ax.set_xticks(x, (df["model"] + " " + df["label"]).tolist(), rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("bytes per query")
    ax.set_title("Bytes on the wire per split point and encoding")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def fidelity(results: Any):
    """Top-1 agreement and max |logit error| against the unsplit model, per encoding."""
    import matplotlib.figure

    df = _rows(results).dropna(subset=["top1_agreement"])
    fig = matplotlib.figure.Figure(figsize=(8, 3.5))
    ax1, ax2 = fig.subplots(1, 2)
    by = df.groupby("encoding")
    ax1.bar(list(by.groups), by["top1_agreement"].min().tolist())
    ax1.set_ylim(0, 1.05)
    ax1.set_ylabel("top-1 agreement (worst split)")
    ax2.bar(list(by.groups), by["max_abs_logit_error"].max().tolist(), color="tab:red")
    ax2.set_ylabel("max |logit error|")
    ax2.set_yscale("symlog", linthresh=1e-6)
    fig.suptitle("Fidelity per encoding")
    fig.tight_layout()
    return fig


def latency_cdf(results: Any):
    """Empirical CDF of per-query latency (from the scheduled send time), one line per test."""
    import matplotlib.figure
    import numpy as np

    fig = matplotlib.figure.Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for _, row in _rows(results).iterrows():
        lat = np.sort(np.asarray(row["latency_ms"], dtype=float))
        if lat.size:
            ax.step(lat, np.arange(1, lat.size + 1) / lat.size, where="post", label=f"{row['model']} {row['label']}")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of queries")
    ax.set_title("Latency CDF")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def render(results: Any, metrics: Any = None, run_info: Any = None) -> list:
    return [latency_breakdown(results), wire_bytes(results), fidelity(results), latency_cdf(results)]


def register() -> None:
    from pytest_collab.report.sections import register_section

    register_section("split_resnet", applies, render)


try:  # the report imports this file; registering is what importing it is for
    register()
except ImportError:  # report package not installed: the figure functions stay usable
    pass
