"""End to end on --lan=local: the real pytest run writes the expected columns, and the
report figures render from what it wrote."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import split_helpers

pd = pytest.importorskip("pandas")

EXPECTED = {"model", "split", "encoding", "head_ms_p50", "encode_ms_p50", "transfer_ms_p50", "decode_ms_p50",
            "tail_ms_p50", "e2e_ms_p50", "raw_bytes", "wire_bytes", "compression_ratio", "image_bytes",
            "top1_agreement", "max_abs_logit_error", "p50_ms", "p90_ms", "p99_ms", "p90_low_confidence",
            "p99_low_confidence", "qps_with_overhead", "qps_without_overhead", "lower_bound_ms", "latency_ms",
            "t_start", "t_end", "tail_t_start", "tail_t_end", "boundary_tensors"}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> "pd.DataFrame":
    out = tmp_path_factory.mktemp("runs")
    root = split_helpers.CASE_DIR.parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(split_helpers.CASE_DIR), "-q", "-p", "no:cacheprovider",
         "--lan=local", f"--collab-out={out}", "--split-samples=4", "-k", "on_device or full_offload or layer2-int8"],
        cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert re.search(r"3 passed", proc.stdout), proc.stdout[-2000:]
    files = [p for p in Path(out).glob("*/results.parquet") if p.parent.name != "latest"]
    assert len(files) == 1, f"expected one run folder under {out}: {files}"
    return pd.read_parquet(files[0])


def test_run_writes_expected_columns(results):
    assert EXPECTED <= set(results.columns), EXPECTED - set(results.columns)
    assert sorted(results["split"]) == ["full_offload", "layer2", "on_device"]
    assert (results["testcase"] == "split_resnet").all()
    off = results.set_index("split")
    assert off.loc["on_device", "wire_bytes"] == 0
    assert off.loc["full_offload", "wire_bytes"] > 0 and off.loc["full_offload", "raw_bytes"] == 224 * 224 * 3
    assert off.loc["layer2", "wire_bytes"] < off.loc["layer2", "raw_bytes"]
    assert all(len(v) == 4 for v in results["latency_ms"])
    # per-query device timestamps lie inside the run, whose metrics share the device clock
    started = pd.Timestamp(results["timestamp"].min()).timestamp()
    for row in results.itertuples():
        assert len(row.t_start) == len(row.t_end) == 4 and all(s <= e for s, e in zip(row.t_start, row.t_end))
        assert row.t_end[-1] <= pd.Timestamp(row.timestamp).timestamp() and row.t_start[0] > started - 600


def test_report_figures_render_from_the_run(results):
    report_sections = split_helpers.load_case_module("report_sections")

    assert report_sections.applies(results)
    assert not report_sections.applies(results.assign(testcase="other"))
    figs = report_sections.render(results)
    titles = [f.axes[0].get_title() or f.get_suptitle() for f in figs]
    assert titles == ["Latency breakdown per cut point (execution order)",
                      "Bytes crossing each cut and on the wire (execution order)",
                      "Fidelity per encoding along the cuts (execution order)"]
    assert len(figs[0].axes[0].patches) == 5 * len(results)      # one bar per stage per test
    # the cuts on the x axis in execution order, labelled by split_resnet's stage names
    assert [t.get_text() for t in figs[1].axes[0].get_xticklabels()] == ["full_offload", "layer2", "on_device"]
    assert report_sections.HEADLINE["distributions"] == ["latency_ms"]  # the report draws it, once
    from pytest_collab.report import sections

    assert any(getattr(s, "name", None) == report_sections.SECTION for s in sections._REGISTRY.values())
