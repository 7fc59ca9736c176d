"""split_plan's report section renders curves, tables and the prediction error from rows."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("matplotlib")
ROOT = Path(__file__).resolve().parents[2]


def _module():
    path = ROOT / "testcases" / "split_plan" / "report_sections.py"
    spec = importlib.util.spec_from_file_location("split_plan_report_sections", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_section_draws_curves_tables_and_error():
    from matplotlib.figure import Figure

    from pytest_collab.report.sections import unregister_section

    mod = _module()
    try:
        rows = []
        for rate, best in ((5.0, "b"), (100.0, "full_offload")):
            for pos, point in enumerate(("full_offload", "a", "b", "on_device")):
                rows.append({"testcase": "split_plan", "kind": "predicted", "link_mbps": rate, "point": point,
                             "position": pos, "encoding": "fp32", "predicted_ms": 10.0 + pos,
                             "measured_link": rate == 100.0, "is_best": point == best})
        for pos, point, meas in ((0, "full_offload", 10.0), (1, "a", 12.0), (3, "on_device", 15.0)):
            rows.append({"testcase": "split_plan", "kind": "measured", "link_mbps": 100.0, "point": point,
                         "position": pos, "encoding": "fp32", "predicted_ms": 10.0 + pos, "measured_ms": meas,
                         "error": (10.0 + pos - meas) / meas, "latency_ms": [meas - 1, meas, meas + 2]})
        rows.append({"testcase": "split_plan", "kind": "verdict", "link_mbps": 100.0, "predicted_best": "full_offload",
                     "measured_best": "full_offload", "regret": 0.0, "ok": True, "median_error": 0.1})
        df = pd.DataFrame(rows)
        assert mod._applies(df) and not mod._applies(df[df["kind"] != "measured"])
        items = mod._render(df, None, {})
        assert isinstance(items[0], Figure)
        assert "over the 3 measured cuts: 8.3%" in items[1]   # |10-10|/10, |11-12|/12, |13-15|/15 -> median 1/12
        best, measured = items[2], items[3]
        assert list(best["predicted best"]) == ["b", "full_offload"]
        assert list(best["measured_best"].fillna("-")) == ["-", "full_offload"]
        assert len(measured) == 3
        assert "Objective: <b>latency</b>" in items[1]      # a run from before the energy objective
        energy = df.assign(objective="energy", predicted_j=0.5, measured_j=0.6)
        items = mod._render(energy, None, {})
        assert "Objective: <b>energy</b>" in items[1] and "scope: board" in items[1]
        assert {"predicted J", "objective"} <= set(items[2].columns) and "measured_j" in items[3]
    finally:
        unregister_section(mod.SECTION)
