"""The split report's figures, for any model: one home for every split test case.

Rows are ``split.run`` summaries (one per test). The cut points go on the x axis in
execution order (``cut_index``; full offload first, on-device last), whatever the model:

- latency breakdown: median head / encode / transfer / decode / tail stacked per
  configuration, with the analytic lower bound;
- bytes: the fp32 bytes crossing each cut and the bytes on the wire per encoding,
  against the uint8 input's bytes (the full-offload payload every cut must beat);
- fidelity per encoding along the cuts: top-1 agreement, largest logit error, and held-out
  accuracy beside the unsplit model's when the rows carry labels' accuracy.

A test case's ``report_sections.py`` names its rows and the column that labels a cut
(split_resnet: ``split``, its stage names) and calls :func:`register`. Figures are
matplotlib ``Figure`` objects (no pyplot); legends sit beside the axes, never on the data.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

STAGES = ("head", "encode", "transfer", "decode", "tail")
#: one colour per encoding in every figure (baselines: raw image, nothing sent)
COLORS = {"fp32": "tab:blue", "fp16": "tab:orange", "int8": "tab:green", "raw": "tab:gray", "none": "tab:purple"}


def rows(results: Any, testcase: str, point: str = "point") -> Any:
    """The test case's rows in execution order of their cut; ``where`` labels the cut
    (the ``point`` column) and ``label`` the configuration."""
    df = results[results["testcase"] == testcase].copy()
    df["order"] = df["cut_index"].astype(float).fillna(math.inf) if "cut_index" in df else 0.0
    df["where"] = df[point].astype(str)
    df["label"] = df["model"] + " " + df["where"] + "/" + df["encoding"]
    return df.sort_values(["model", "order", "encoding"], kind="stable")


def _cuts(df: Any) -> tuple[list[Any], list[str]]:
    """Each row's x position (one per model and cut, in execution order) and the tick labels."""
    keys = list(dict.fromkeys(zip(df["model"], df["where"])))
    several = len({m for m, _ in keys}) > 1
    pos = {k: i for i, k in enumerate(keys)}
    return [pos[k] for k in zip(df["model"], df["where"])], [f"{m} {w}" if several else w for m, w in keys]


def _figure(width: float, height: float = 4.2) -> Any:
    import matplotlib.figure

    return matplotlib.figure.Figure(figsize=(width, height), layout="constrained")


def _legend(ax: Any) -> None:
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _by_encoding(df: Any) -> list[tuple[str, Any]]:
    """The rows per encoding, in :data:`COLORS` order (others after)."""
    rank = {e: i for i, e in enumerate(COLORS)}
    return sorted(df.groupby("encoding", sort=False), key=lambda kv: rank.get(kv[0], len(rank)))


def _error_column(df: Any) -> str:
    """The controller's logit error where the row has it, else the device's own."""
    if "max_logit_error" in df and df["max_logit_error"].notna().any():
        return "max_logit_error"
    return "max_abs_logit_error"


def latency_breakdown(df: Any) -> Any:
    """Median per-stage times stacked per configuration, with the analytic lower bound."""
    fig = _figure(max(7, 0.6 * len(df) + 2))
    ax = fig.add_subplot()
    x = list(range(len(df)))
    bottom = [0.0] * len(df)
    for stage in STAGES:
        vals = df[f"{stage}_ms_p50"].fillna(0).tolist() if f"{stage}_ms_p50" in df else [0.0] * len(df)
        ax.bar(x, vals, bottom=bottom, label=stage)
        bottom = [b + v for b, v in zip(bottom, vals)]
    if "lower_bound_ms" in df:
        ax.plot(x, df["lower_bound_ms"].tolist(), "k_", markersize=18, label="lower bound")
    ax.set_xticks(x, df["label"].tolist(), rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("median latency (ms)")
    ax.margins(y=0.08)
    ax.set_title("Latency breakdown per cut point (execution order)")
    _legend(ax)
    return fig


def boundary_bytes(df: Any) -> Any:
    """fp32 bytes crossing each cut and wire bytes per encoding, against the uint8 input."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    xs, ticks = _cuts(df)
    df = df.assign(x=xs)
    fig = _figure(max(7, 0.5 * len(ticks) + 3))
    ax = fig.add_subplot()
    cuts = df.drop_duplicates("x")
    crossing = [b if b and b > 0 else math.nan for b in cuts["boundary_bytes"].tolist()]
    ax.plot(cuts["x"].tolist(), crossing, "o", color="k", fillstyle="none", markersize=9, label="crossing (fp32)")
    for encoding, group in _by_encoding(df):
        wire = [w if w > 0 else math.nan for w in group["wire_bytes"].fillna(0).tolist()]
        if all(math.isnan(w) for w in wire):     # nothing sent (on-device): annotated below
            continue
        ax.plot(group["x"].tolist(), wire, "o-", color=COLORS.get(encoding), label=f"wire, {encoding}")
    for x in df.loc[df["wire_bytes"].fillna(0) <= 0, "x"].unique():   # on-device: a log axis has no 0
        ax.annotate("nothing sent", (x, 0.5), xycoords=("data", "axes fraction"), ha="center", va="center",
                    fontsize=8, rotation=90, color="0.35")
    for n, (_model, group) in enumerate(df.groupby("model", sort=False)):
        image = float(group["image_bytes"].max())
        ax.hlines(image, group["x"].min() - 0.4, group["x"].max() + 0.4, colors="k", linestyles="--",
                  label=f"uint8 input ({_bytes_label(image)})" if n == 0 else None)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(_bytes_label))
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.margins(y=0.1)
    ax.set_xticks(range(len(ticks)), ticks, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("bytes per query")
    ax.set_title("Bytes crossing each cut and on the wire (execution order)")
    _legend(ax)
    return fig


def _bytes_label(value: float, _pos: Any = None) -> str:
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.3g} B"


def fidelity(df: Any) -> Any:
    """Top-1 agreement, largest logit error and (with labels) held-out accuracy per encoding
    along the cuts; the unsplit model's accuracy as the reference line."""
    xs, ticks = _cuts(df)
    df = df.assign(x=xs).dropna(subset=["top1_agreement"])
    error = _error_column(df)
    has_acc = "accuracy" in df and df["accuracy"].notna().any()
    panels = 3 if has_acc else 2
    fig = _figure(max(8, panels * (0.35 * len(ticks) + 2.5)), 3.8)
    axes = fig.subplots(1, panels, sharex=True)
    for encoding, group in _by_encoding(df):
        style = {"color": COLORS.get(encoding)}
        axes[0].plot(group["x"].tolist(), group["top1_agreement"].tolist(), "o-", label=encoding, **style)
        axes[1].plot(group["x"].tolist(), group[error].tolist(), "o-", **style)
        if has_acc:
            axes[2].plot(group["x"].tolist(), group["accuracy"].tolist(), "o-", **style)
    axes[0].set_ylim(0, 1.05)
    axes[0].set_ylabel("top-1 agreement")
    axes[1].set_ylabel("max |logit error|")
    # linear below the smallest error that is not 0, so 1e-12 (random weights' flat logits) shows too
    errors = [e for e in df[error].tolist() if e == e and e > 0]
    axes[1].set_yscale("symlog", linthresh=min(errors) if errors else 1e-6)
    axes[1].set_ylim(0, max(errors) * 5 if errors else 1e-5)      # errors are >= 0; room above the worst
    if has_acc:
        axes[2].axhline(float(df["accuracy_ref"].max()), color="k", linestyle="--", label="unsplit")
        axes[2].set_ylim(0, 1.05)
        axes[2].set_ylabel("held-out accuracy")
        axes[2].legend(fontsize=8, frameon=False)
    for ax in axes:
        ax.set_xticks(range(len(ticks)), ticks, rotation=45, ha="right", fontsize=8)
    axes[0].legend(title="encoding", fontsize=8, frameon=False)
    fig.suptitle("Fidelity per encoding along the cuts (execution order)")
    return fig


def section(testcase: str, point: str = "point") -> tuple[Callable[..., bool], Callable[..., list]]:
    """``applies(results, run_info=None)`` and ``render(results, metrics=None, run_info=None)``
    for the rows of ``testcase``, cuts labelled by the ``point`` column."""

    def applies(results: Any, run_info: Any = None) -> bool:
        return "testcase" in results and bool((results["testcase"] == testcase).any())

    def render(results: Any, metrics: Any = None, run_info: Any = None) -> list:
        df = rows(results, testcase, point)
        return [latency_breakdown(df), boundary_bytes(df), fidelity(df)]

    return applies, render


def register(name: str, applies: Callable[..., bool], render: Callable[..., list]) -> None:
    """Register the section with the report (a no-op where the report package is absent)."""
    try:
        from pytest_collab.report.sections import register_section
    except ImportError:  # the figure functions stay usable
        return
    register_section(name, applies, render)
