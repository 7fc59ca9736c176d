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


@pytest.mark.parametrize(("metric", "better"), [
    ("rtt_p50_ms", "lower"), ("bytes_sent", "lower"), ("wire_bytes", "lower"), ("run_time_s", "lower"),
    ("max_abs_logit_error", "lower"), ("clients_failed", "lower"),
    ("throughput_mbps", "higher"), ("top1", "higher"), ("fidelity", "higher"), ("final_accuracy", "higher"),
    ("top1_agreement", "higher"), ("link_MBps", "higher"),
    # the quantity decides, not a qualifier: a rate "with overhead" is still a rate
    ("qps_with_overhead", "higher"), ("qps_without_overhead", "higher"), ("overhead_ms", "lower"),
    ("widgets", None), ("compression_ratio", None),
])
def test_direction_comes_from_the_quantity(metric: str, better: str | None) -> None:
    assert direction(metric) == better


def test_default_tolerances_by_family_and_overrides() -> None:
    assert default_tolerance("accuracy", False) == {"relative": 0.01}
    # a 3x slowdown (+200%) is far outside the default for times: no more ±200%
    assert default_tolerance("latency_ms", False) == {"relative": 0.25}
    assert default_tolerance("rtt_ms", True)["statistical"] == 0.001
    assert default_tolerance("widgets", False) is None
    rules = {"rtt_*": {"relative": 0.5}, "rtt_p99_ms": "ignore"}
    assert tolerance_for("rtt_p50_ms", False, rules) == {"relative": 0.5}
    assert tolerance_for("rtt_p99_ms", False, rules) is None


def test_tolerance_comes_from_the_measured_spread() -> None:
    from pytest_collab.share.metric_rules import runs_spread, sample_spread

    rng = np.random.default_rng(3)
    tight, loose = rng.normal(100, 1, 400), rng.normal(100, 20, 400)
    assert sample_spread(tight) == pytest.approx(1.349 / 100, rel=0.15)  # IQR of a normal = 1.349 sigma
    assert sample_spread(loose) == pytest.approx(20 * 1.349 / 100, rel=0.15)
    assert default_tolerance("latency_ms", True, sample_spread(loose))["relative"] == pytest.approx(
        2 * sample_spread(loose), rel=1e-3)
    assert default_tolerance("latency_ms", True, sample_spread(tight))["relative"] == 0.05  # the floor
    assert runs_spread([10.0, 11.0, 12.0]) == pytest.approx(2 / 11)
    assert runs_spread([10.0, None]) is None


def test_three_x_slowdown_fails_and_noise_inside_the_spread_passes(tmp_path: Path) -> None:
    base = write_run(tmp_path / "a", _rows([1], 0.90, 10.0))
    slow = compare_runs(base, write_run(tmp_path / "b", _rows([1], 0.90, 30.0)))
    lat = next(m for m in slow.rows[0].metrics if m.metric == "latency_ms")
    assert lat.relative == pytest.approx(2.0) and lat.failed  # 3x: FAIL, not "ok"
    noisy = compare_runs(base, write_run(tmp_path / "c", _rows([1], 0.90, 10.0, shift=0.2)))
    rtt = next(m for m in noisy.rows[0].metrics if m.metric == "rtt_ms")
    assert "from spread" in table_lines(noisy)[2 + [m.metric for m in noisy.rows[0].metrics].index("rtt_ms")]
    assert not rtt.failed


def test_rows_sort_numerically_and_ignore_measured_flags(tmp_path: Path) -> None:
    sizes = [1024, 16384, 262144, 4096]
    rows_a = [{"test": "test_tiny[x]", "params": {}, "size_bytes": s, "p90_ms": 2.0,
               "p90_low_confidence": s == 4096} for s in sizes]
    rows_b = [dict(r, p90_low_confidence=not r["p90_low_confidence"]) for r in rows_a]
    a = write_run(tmp_path / "a", [dict(r) for r in rows_a])
    b = write_run(tmp_path / "b", [dict(r) for r in rows_b])
    cmp = compare_runs(a, b)
    assert [r.key["size_bytes"] for r in cmp.rows] == sorted(sizes)  # 4096 before 16384
    assert not cmp.only_a and not cmp.only_b  # the flipped flag does not unmatch rows
    assert all("p90_low_confidence" not in r.key for r in cmp.rows)


def test_n_runs_trend_and_spread_from_the_earlier_runs(tmp_path: Path) -> None:
    from pytest_collab.share.compare_render import trend_lines
    from pytest_collab.share.compare_trend import trend_runs

    runs = [write_run(tmp_path / f"r{i}", [{"test": "test_tiny[1]", "params": {"size": 1}, "qps": q}],
                      run_id=f"20260101-00000{i}-aaaaaa") for i, q in enumerate([100.0, 90.0, 110.0, 70.0])]
    trend = trend_runs(runs)
    (row,) = [r for r in trend.rows if r.metric == "qps"]
    assert row.values == [100.0, 90.0, 110.0, 70.0]
    qps = next(m for m in trend.comparison.rows[0].metrics if m.metric == "qps")
    # spread over the first three runs: (110-90)/100 = 20% -> tolerance 40%; -30% is inside it
    assert qps.tolerance["relative"] == pytest.approx(0.4) and qps.verdict == "worse" and not qps.failed
    lines = trend_lines(trend)
    assert lines[0] == "#1 = 20260101-000000-aaaaaa" and any("70" in line and "qps" in line for line in lines)
    steady = [write_run(tmp_path / f"s{i}", [{"test": "test_tiny[1]", "params": {"size": 1}, "qps": q}],
                        run_id=f"20260101-00001{i}-aaaaaa") for i, q in enumerate([100.0, 101.0, 100.0, 70.0])]
    assert trend_runs(steady).comparison.failed_metrics == ["qps"]  # a steady metric gets no room
    assert main(["compare", *map(str, steady), "--gate"]) == 1


@pytest.mark.parametrize(("column", "when"), [
    ("t_start", True), ("t_end", True), ("tail_t_start", True), ("tail_t_end", True), ("t0", True),
    ("t", True), ("timestamp", True), ("send_ts", True),
    ("t_infer_ms", False), ("train_time_s", False), ("rtt_ms", False), ("throughput_mbps", False),
    ("epochs", False), ("tokens", False),
])
def test_points_in_time_are_told_from_measured_amounts(column: str, when: bool) -> None:
    from pytest_collab.share.metric_rules import is_timestamp

    assert is_timestamp(column) is when


def test_per_measurement_timestamps_are_no_metrics(tmp_path: Path) -> None:
    """t_start/t_end differ in every run (scalars as link_baseline records them, lists as
    split does): compare, the N-run trend and so replay skip them like provenance."""
    from pytest_collab.share.compare_trend import trend_runs

    def rows(t0: float, rtt: float) -> list[dict]:
        return [{"test": "test_tiny[1]", "params": {"size": 1}, "rtt_p50_ms": rtt,
                 "t_start": t0, "t_end": t0 + 0.5, "tail_t_start": [t0 + i for i in range(5)],
                 "latency_ms": [rtt + 0.01 * i for i in range(5)]}]

    runs = [write_run(tmp_path / f"r{i}", rows(1.7e9 + 3600 * i, 5.0), run_id=f"20260101-00000{i}-aaaaaa")
            for i in range(3)]
    cmp = compare_runs(runs[0], runs[1])
    assert cmp.passed and len(cmp.rows) == 1
    assert sorted(m.metric for m in cmp.rows[0].metrics) == ["latency_ms", "rtt_p50_ms"]
    trend = trend_runs(runs, all_metrics=True)
    assert {r.metric for r in trend.rows} == {"latency_ms", "rtt_p50_ms"} and trend.comparison.passed
    slower = write_run(tmp_path / "slow", rows(1.7e9, 50.0), run_id="20260101-000009-aaaaaa")
    assert compare_runs(runs[0], slower).failed_metrics == ["rtt_p50_ms"]  # real metrics still gate


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


def test_tolerances_tight_accuracy_and_overrides(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", _rows([1], 0.90, 10.0))
    b = write_run(tmp_path / "b", _rows([1], 0.88, 12.0, shift=0.3))
    cmp = compare_runs(a, b)
    assert cmp.failed_metrics == ["accuracy"]  # 2% worse: tight; latency +20%: inside the 25% default
    test = cmp.tests[0]
    assert not test.passed and test.failing[0].startswith("accuracy: 0.9 -> 0.88")
    strict = compare_runs(a, b, {"latency_ms": {"relative": 0.1}, "accuracy": "ignore"})
    assert strict.failed_metrics == ["latency_ms"]
    samples = compare_runs(a, write_run(tmp_path / "c", _rows([1], 0.90, 10.0, shift=3.0)))
    rtt = next(m for m in samples.rows[0].metrics if m.metric == "rtt_ms")
    # significant and +60%, beyond twice the baseline's own spread (IQR/median of N(5, 0.5): 13%)
    assert rtt.p_value < 0.001 and rtt.verdict == "worse" and rtt.failed
    assert rtt.tolerance["spread"] and 0.1 < rtt.tolerance["relative"] < 0.6
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
