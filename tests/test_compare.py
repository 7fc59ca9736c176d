"""compare: alignment across parameter sets, direction, significance, tolerances, rendering."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bundle_helpers import write_run
from pytest_collab.cli import main
from pytest_collab.share.compare import (compare_runs, default_tolerance, direction, permutation_test,
                                   significance, tolerance_for)
from pytest_collab.share.compare_render import table_lines, write_html


def _rows(sizes: list[int], acc: float, lat: float, shift: float = 0.0) -> list[dict]:
    rng = np.random.default_rng(1)
    return [{"test": f"test_tiny[{s}]", "params": {"size": s}, "accuracy": acc, "latency_ms": lat * s,
             "bytes_sent": 100 * s, "widgets": 3, "rtt_ms": list(rng.normal(5 + shift, 0.5, 60))}
            for s in sizes]


def test_runs_with_different_parameter_sets_align_and_list_unmatched(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", _rows([1, 2], 0.90, 10.0), run_id="20260101-000000-aaaaaa")
    b = write_run(tmp_path / "b", _rows([2, 3], 0.91, 12.0), run_id="20260101-000001-bbbbbb")
    cmp = compare_runs(a, b)
    assert [(r.test, r.key) for r in cmp.rows] == [("test_tiny.py::test_tiny[2]", {"size": 2})]
    assert [(r["test"], r["size"]) for r in cmp.only_a] == [("test_tiny.py::test_tiny[1]", 1)]
    assert [(r["test"], r["size"]) for r in cmp.only_b] == [("test_tiny.py::test_tiny[3]", 3)]
    metrics = {m.metric: m for m in cmp.rows[0].metrics}
    assert metrics["latency_ms"].delta == pytest.approx(4.0) and metrics["latency_ms"].verdict == "worse"
    assert metrics["latency_ms"].relative == pytest.approx(0.2)
    assert metrics["accuracy"].verdict == "better"
    assert metrics["widgets"].verdict == "same" and metrics["widgets"].direction is None
    lines = table_lines(cmp)
    assert any("only in 20260101-000000-aaaaaa (baseline): tiny::test_tiny.py::test_tiny[1] size=1" in l
               for l in lines)
    assert any("only in 20260101-000001-bbbbbb: tiny::test_tiny.py::test_tiny[3] size=3" in l for l in lines)


def test_directions_and_defaults() -> None:
    assert direction("rtt_p50_ms") == "lower" and direction("bytes_sent") == "lower"
    assert direction("throughput_mbps") == "higher" and direction("top1") == "higher"
    assert direction("fidelity") == "higher" and direction("widgets") is None
    assert default_tolerance("accuracy", False) == {"relative": 0.01}
    assert default_tolerance("latency_ms", False)["relative"] > 1.0  # loose: labs differ
    assert "statistical" in default_tolerance("rtt_ms", True)
    assert default_tolerance("widgets", False) is None
    rules = {"rtt_*": {"relative": 0.5}, "rtt_p99_ms": "ignore"}
    assert tolerance_for("rtt_p50_ms", False, rules) == {"relative": 0.5}
    assert tolerance_for("rtt_p99_ms", False, rules) is None


def test_significance_on_samples() -> None:
    rng = np.random.default_rng(7)
    same_a, same_b = rng.normal(5, 1, 80), rng.normal(5, 1, 80)
    shifted = rng.normal(6, 1, 80)
    p, test = significance(list(same_a), list(shifted))
    assert test == "mann-whitney" and p < 1e-4
    assert significance(list(same_a), list(same_b))[0] > 0.01
    assert permutation_test(same_a, shifted, rounds=500) < 0.01
    assert permutation_test(same_a, same_b, rounds=500) > 0.01
    assert significance([1.0, 2.0], [3.0, 4.0]) == (None, None)


def test_tolerances_tight_accuracy_loose_latency_and_overrides(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", _rows([1], 0.90, 10.0))
    b = write_run(tmp_path / "b", _rows([1], 0.88, 15.0, shift=0.3))
    cmp = compare_runs(a, b)
    assert cmp.failed_metrics == ["accuracy"]  # 2% worse: tight; latency +50%: inside the loose default
    test = cmp.tests[0]
    assert not test.passed and test.failing[0].startswith("accuracy: 0.9 -> 0.88")
    strict = compare_runs(a, b, {"latency_ms": {"relative": 0.1}, "accuracy": "ignore"})
    assert strict.failed_metrics == ["latency_ms"]
    samples = compare_runs(a, write_run(tmp_path / "c", _rows([1], 0.90, 10.0, shift=3.0)))
    rtt = next(m for m in samples.rows[0].metrics if m.metric == "rtt_ms")
    assert rtt.p_value < 0.001 and rtt.verdict == "worse" and not rtt.failed  # significant, +60% < 100%
    far = compare_runs(a, write_run(tmp_path / "d", _rows([1], 0.90, 10.0, shift=8.0)))
    assert far.failed_metrics == ["rtt_ms"]


def test_html_has_side_by_side_figures_and_cli_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path / "a", _rows([1, 2], 0.90, 10.0))
    b = write_run(tmp_path / "b", _rows([1, 2], 0.80, 10.0), profile="emulated", transport="ssh")
    page = write_html(compare_runs(a, b), *_frames(a, b), tmp_path / "c.html", notes=["labs differ"])
    text = page.read_text()
    assert text.count("<img") >= 3 and "labs differ" in text and "FAIL: accuracy" in text
    out = tmp_path / "cli.html"
    assert main(["compare", str(a), str(b), "--html", str(out)]) == 0
    assert main(["compare", str(a), str(b), "--gate", "--changed-only"]) == 1
    printed = capsys.readouterr().out
    assert "profile lab1 (ssh devices" in printed and "profile emulated (devices emulated" in printed
    assert "FAIL tiny::test_tiny.py::test_tiny[1]" in printed and out.is_file()


def _frames(a: Path, b: Path):
    from pytest_collab.share.compare import load_results

    return load_results(a)[0], load_results(b)[0]
