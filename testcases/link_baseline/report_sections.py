"""link_baseline's report: its headline, and throughput and round-trip time against message size."""
from __future__ import annotations

from pytest_collab.report.sections import register_section

#: the summary table: one row per transport and size, throughput the key figure
HEADLINE = {"columns": ["transport", "size_bytes"], "key": "throughput_mbps",
            "also": ["rtt_p50_ms", "rtt_p99_ms", "samples"], "distributions": ["rtt_ms"]}


def _applies(results, run_info) -> bool:
    return {"transport", "size_bytes", "throughput_mbps"} <= set(results.columns) and (
        results.get("testcase") == "link_baseline").any()


def _render(results, metrics, run_info) -> list:
    from matplotlib.figure import Figure

    rows = results[results["testcase"] == "link_baseline"]
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    thr, rtt = fig.subplots(1, 2)
    for transport, group in rows.groupby("transport"):
        group = group.sort_values("size_bytes")
        kib = group["size_bytes"] / 1024
        thr.plot(kib, group["throughput_mbps"], marker="o", label=transport)
        rtt.plot(kib, group["rtt_p50_ms"], marker="o", label=f"{transport} p50")
        rtt.plot(kib, group["rtt_p99_ms"], marker="x", linestyle="--", label=f"{transport} p99")
    for ax, label in ((thr, "throughput (Mbit/s, from median RTT)"), (rtt, "round-trip time (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("message size (KiB)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        # below the axes, never on the data
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=4, frameon=False, fontsize=9)
    table = rows.pivot_table(index="size_bytes", columns="transport", values="throughput_mbps")
    table.columns = [f"{c} Mbit/s" for c in table.columns]
    table = table.round(1).reset_index()
    table.insert(1, "size KiB", table["size_bytes"] / 1024)
    return [fig, "<p>The link's own limit: every transfer of a later experiment on the same "
                 "pair is judged against these numbers.</p>", table]


register_section("Throughput and round-trip time by message size", _applies, _render)
