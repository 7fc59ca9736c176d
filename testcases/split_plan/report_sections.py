"""split_plan's report: predicted latency per cut (one curve per link rate) with the measured
cuts and their spread, predicted vs measured best per link rate, and the prediction error."""
from __future__ import annotations

from typing import Any

from pytest_collab.report.sections import register_section

SECTION = "Choosing a cut: predicted vs measured"


def _applies(results: Any, run_info: Any = None) -> bool:
    return "testcase" in results and "kind" in results and bool(
        ((results["testcase"] == "split_plan") & (results["kind"] == "measured")).any())


def _spread(latencies: Any) -> tuple[float, float]:
    """(p10, p90) of one measurement's per-query latencies (nearest rank)."""
    from pytest_collab.devicekit.stats import nearest_rank

    xs = list(latencies) if latencies is not None else []
    return (nearest_rank(xs, 10), nearest_rank(xs, 90)) if len(xs) else (float("nan"), float("nan"))


def curves(results: Any):
    """Predicted end-to-end latency per cut, a line per link rate; measured medians with p10-p90 bars."""
    from matplotlib.figure import Figure

    df = results[results["testcase"] == "split_plan"]
    pred, meas = df[df["kind"] == "predicted"], df[df["kind"] == "measured"].sort_values("position")
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    ax = fig.add_subplot()
    names: dict[int, str] = {}
    for rate, group in pred.groupby("link_mbps"):
        group = group.sort_values("position")
        names.update(zip(group["position"].astype(int), group["point"]))
        measured_link = bool(group["measured_link"].any())
        ax.plot(group["position"], group["predicted_ms"], marker=".", linewidth=2.2 if measured_link else 1.0,
                label=f"predicted, {rate:g} Mbit/s" + (" (measured link)" if measured_link else ""))
    lo, hi = zip(*(_spread(x) for x in meas["latency_ms"])) if len(meas) else ((), ())
    ax.errorbar(meas["position"], meas["measured_ms"],
                yerr=[meas["measured_ms"] - list(lo), list(hi) - meas["measured_ms"]],
                fmt="ko", capsize=4, label="measured p50 (bars p10-p90)")
    ticks = sorted(names)
    ax.set_xticks(ticks, [names[t] for t in ticks], rotation=60, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("end-to-end latency per query (ms)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    return fig


def _cols(df: Any, names: list[str]) -> list[str]:
    return [n for n in names if n in df]


def objective(results: Any) -> str:
    """What the run's plan minimised: ``latency`` (runs before the energy objective) or ``energy``."""
    df = results[(results["testcase"] == "split_plan") & (results["kind"] == "verdict")]
    return str(df["objective"].iloc[-1]) if "objective" in df and len(df) and df["objective"].notna().any() \
        else "latency"


def tables(results: Any) -> list:
    df = results[results["testcase"] == "split_plan"]
    pred = df[(df["kind"] == "predicted") & (df["is_best"] == True)]  # noqa: E712
    best = pred[_cols(pred, ["link_mbps", "point", "encoding", "predicted_ms", "predicted_j"])].rename(
        columns={"point": "predicted best", "predicted_ms": "predicted ms", "predicted_j": "predicted J"})
    verdict = df[df["kind"] == "verdict"]
    verdict = verdict[_cols(verdict, ["link_mbps", "objective", "measured_best", "regret", "ok", "median_error",
                                      "median_energy_error"])]
    best = best.merge(verdict, on="link_mbps", how="left").sort_values("link_mbps")
    meas = df[df["kind"] == "measured"]
    meas = meas[_cols(meas, ["point", "encoding", "link_mbps", "predicted_ms", "measured_ms", "error",
                             "predicted_j", "measured_j"])]
    return [best.round(4), meas.round(4)]


def _render(results: Any, metrics: Any, run_info: Any) -> list:
    meas = results[(results["testcase"] == "split_plan") & (results["kind"] == "measured")]
    err = meas["error"].abs().median()
    chosen = objective(results)
    why = ("the least board energy per inference (edge board over the whole query + server board over its "
           "work, at each board's power in its profile pass; scope: board)" if chosen == "energy"
           else "the least latency per query")
    return [curves(results), f"<p>Objective: <b>{chosen}</b>, the plan chose {why}. "
            f"Median |predicted - measured| / measured latency over the {len(meas)} measured cuts: "
            f"{err:.1%}. Predictions assume a serial pipeline of one query (docs/split.md, "
            "'Choosing a cut'); measured rows exist only for the run's own link rate.</p>", *tables(results)]


register_section(SECTION, _applies, _render)
