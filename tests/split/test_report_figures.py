"""The split report's figures for any model: cuts in execution order on the x axis, bytes
against the uint8 input, fidelity per encoding (and accuracy when the rows have it)."""
from __future__ import annotations

import math

import pytest

from pytest_collab.split import report_figures

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")


def frame(accuracy: bool = False):
    """split.run rows of two models, deliberately out of order."""
    recs = []
    for model, cuts in (("tiny", [("conv_b", 5), ("on_device", None), ("full_offload", -1), ("stem.0", 1)]),
                        ("mnv3", [("features.8", 90), ("features.3", 30)])):
        for point, index in cuts:
            for enc in (["fp32"] if index in (None, -1) else ["int8", "fp32"]):
                sent = 0 if index is None else (768 if index == -1 else (1000 if enc == "int8" else 4000))
                recs.append({"testcase": "split_any", "model": model, "point": point, "encoding": enc,
                             "cut_index": index, "boundary_bytes": 0 if index is None else 4096,
                             "wire_bytes": sent, "image_bytes": 768, "top1_agreement": 1.0 if enc == "fp32" else 0.9,
                             "max_logit_error": 0.0 if enc == "fp32" else 0.2, "lower_bound_ms": 1.0,
                             **{f"{s}_ms_p50": 0.5 for s in report_figures.STAGES},
                             **({"accuracy": 0.8, "accuracy_ref": 0.85} if accuracy else {})})
    recs.append({**recs[0], "testcase": "other"})
    return pd.DataFrame(recs)


def test_rows_follow_execution_order_with_baselines_at_the_ends():
    df = report_figures.rows(frame(), "split_any")
    tiny = df[df["model"] == "tiny"]
    assert list(dict.fromkeys(tiny["point"])) == ["full_offload", "stem.0", "conv_b", "on_device"]
    assert (df["testcase"] == "split_any").all() and math.isinf(tiny["order"].iloc[-1])


def test_figures_put_cuts_on_the_x_axis_in_order_against_the_input():
    applies, render = report_figures.section("split_any")
    results = frame()
    assert applies(results) and not applies(results.assign(testcase="x"))
    latency, sizes, fidelity = render(results)
    assert len(latency.axes[0].patches) == 5 * 10                 # 10 configurations, 5 stages each
    ticks = [t.get_text() for t in sizes.axes[0].get_xticklabels()]
    assert ticks == ["mnv3 features.3", "mnv3 features.8", "tiny full_offload", "tiny stem.0", "tiny conv_b",
                     "tiny on_device"]
    labels = [line.get_label() for line in sizes.axes[0].get_lines()]
    assert {"wire, int8", "wire, fp32", "crossing (fp32)"} <= set(labels)
    assert any("uint8 input (768 B)" == c.get_label() for c in sizes.axes[0].collections)
    assert len(fidelity.axes) == 2 and {line.get_label() for line in fidelity.axes[0].get_lines()} == {"int8", "fp32"}


def test_accuracy_panel_when_rows_carry_labels():
    _, render = report_figures.section("split_any")
    fidelity = render(frame(accuracy=True))[2]
    assert len(fidelity.axes) == 3 and fidelity.axes[2].get_ylabel() == "held-out accuracy"


def test_stage_names_label_the_cuts():
    results = frame().assign(testcase="split_resnet", split=lambda d: d["point"].str.upper())
    _, render = report_figures.section("split_resnet", point="split")
    ticks = [t.get_text() for t in render(results)[1].axes[0].get_xticklabels()]
    assert ticks[:2] == ["mnv3 FEATURES.3", "mnv3 FEATURES.8"]
