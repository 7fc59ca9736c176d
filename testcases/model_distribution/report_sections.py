"""model_distribution's report section: ensure time (hit vs miss), cold start, latency.

One bar group per device: ensure time of a registry miss (export + push + fetch) and of a
hit (fetch only), and the cold start (deploy -> first prediction); a table with bytes
pulled, per-prediction latency and throughput.
"""
from __future__ import annotations

from typing import Any


def applies(results: Any, run_info: Any = None) -> bool:
    return "testcase" in results and bool((results["testcase"] == "model_distribution").any())


def _rows(results: Any) -> Any:
    return results[results["testcase"] == "model_distribution"]


def timings(results: Any):
    import matplotlib.figure

    df = _rows(results)
    devices = sorted(df["device"].unique())
    fig = matplotlib.figure.Figure(figsize=(max(6, 1.6 * len(devices)), 4))
    ax = fig.add_subplot()
    bars = [("miss", "ensure_s", "ensure (miss)"), ("hit", "ensure_s", "ensure (hit)"),
            ("hit", "cold_start_s", "cold start (hit)")]
    width = 0.8 / len(bars)
    for i, (cache, column, label) in enumerate(bars):
        sub = df[df["cache"] == cache].groupby("device")[column].median()
        ax.bar([x + i * width for x in range(len(devices))], [float(sub.get(d, 0)) for d in devices],
               width, label=label)
    ax.set_xticks([x + width for x in range(len(devices))], devices)
    ax.set_ylabel("seconds")
    ax.set_title("Model distribution: ensure (registry hit vs miss) and cold start per device")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def table(results: Any):
    cols = ["cache", "device", "arch", "how", "bytes_pulled", "ensure_s", "fetch_s", "load_s",
            "cold_start_s", "latency_p50_ms", "throughput_ips"]
    return _rows(results)[cols].round(3)


def render(results: Any, metrics: Any = None, run_info: Any = None) -> list:
    return [timings(results), table(results)]


try:  # the report imports this file; registering is what importing it is for
    from pytest_collab.report.sections import register_section

    register_section("model_distribution", applies, render)
except ImportError:
    pass
