"""Energy integration (results/energy.py) against known power profiles and synthetic runs."""
from __future__ import annotations

import math
from typing import Dict, List

import numpy as np
import pandas as pd
import pytest

from pytest_collab.results import energy

T0 = 1_800_000_000.0  # epoch seconds of the synthetic runs


def profile(t: np.ndarray) -> np.ndarray:
    """A known power curve: 5 W base, a 3 W sine of period 10 s, a 4 W step from 20 to 30 s."""
    return 5.0 + 3.0 * np.sin(2 * np.pi * t / 10.0) + 4.0 * ((t >= 20.0) & (t < 30.0))


def exact(a: float, b: float) -> float:
    """Integral of :func:`profile` from ``a`` to ``b`` (closed form)."""
    base = 5.0 * (b - a) - 3.0 * 10.0 / (2 * np.pi) * (np.cos(2 * np.pi * b / 10) - np.cos(2 * np.pi * a / 10))
    return float(base + 4.0 * max(0.0, min(b, 30.0) - max(a, 20.0)))


def metrics_frame(series: Dict[str, tuple], device: str = "rpi-1", test: str = "t.py::test_a",
                  program: str = "head", pid: int = 10) -> pd.DataFrame:
    """Long-format metrics rows (the metrics.parquet columns) from ``{metric: (t, values)}``."""
    rows: List[dict] = []
    for metric, (ts, values) in series.items():
        for t, v in zip(ts, values):
            rows.append({"run": "r", "test": test, "device": device, "program": program, "pid": pid,
                         "timestamp": pd.Timestamp(T0 + t, unit="s", tz="UTC"), "metric": metric,
                         "value": float(v), "unit": "W"})
    return pd.DataFrame(rows)


def test_trapezoid_matches_a_known_profile_within_one_percent() -> None:
    t = np.arange(0.0, 60.0001, 0.1)  # 10 Hz, with a little jitter as a real wrapper has
    t = t + np.random.default_rng(1).uniform(-0.01, 0.01, len(t))
    t.sort()
    for a, b in [(3.05, 47.3), (19.97, 30.02), (0.0, 60.0), (12.34, 12.81)]:
        got = energy.trapezoid(t, profile(t), a, b)
        want = exact(max(a, t[0]), min(b, t[-1]))
        assert abs(got - want) / want < 0.01, (a, b, got, want)
    # Interpolated window ends: half of one flat 2 s interval is exactly 1 s worth.
    assert energy.trapezoid([0.0, 2.0], [4.0, 4.0], 0.5, 1.5) == pytest.approx(4.0)
    assert energy.trapezoid([0.0], [4.0]) == 0.0


def test_counter_difference_is_exact_and_interpolated() -> None:
    t = np.array([0.0, 1.0, 2.0, 3.0])
    joules = np.array([0.0, 6.0, 12.0, 18.0])
    assert energy.counter_delta(t, joules) == 18.0
    assert energy.counter_delta(t, joules, 0.5, 2.25) == pytest.approx(10.5)
    assert energy.counter_delta(t, joules, 5.0, 9.0) == 0.0  # outside what was sampled


@pytest.mark.parametrize("names,expected", [
    ({"power_w.meter", "power_w.VDD_IN", "power_w.rapl.package-0"}, ("power_w.meter",)),
    ({"power_w.VDD_IN", "power_w.VDD_CPU_GPU_CV", "temp_c.cpu"}, ("power_w.VDD_IN",)),
    ({"power_w.pmic"}, ("power_w.pmic",)),
    ({"power_w.rapl.package-0", "power_w.rapl.package-0.core", "power_w.rapl.package-0.dram",
      "power_w.rapl.package-1", "power_w.nvml.gpu0", "power_w.amdgpu.PPT"},
     ("power_w.rapl.package-0", "power_w.rapl.package-0.dram", "power_w.rapl.package-1", "power_w.nvml.gpu0")),
    ({"power_w.rapl.psys", "power_w.rapl.package-0"}, ("power_w.rapl.psys",)),
    ({"power_w.fakechip.board", "power_w.other.x"}, ("power_w.fakechip.board", "power_w.other.x")),
    ({"temp_c.cpu", "cpu_percent"}, ()),
])
def test_basis_counts_every_joule_once(names: set, expected: tuple) -> None:
    assert energy.basis(names) == expected


def test_device_energy_prefers_the_counter_and_labels_board_scope() -> None:
    t = np.arange(0.0, 10.0001, 0.1)
    # The power samples say 5 W; the counter says 6 W: the counter (exact) must win.
    frame = metrics_frame({"power_w.rapl.package-0": (t, np.full(len(t), 5.0)),
                           "energy_j.rapl.package-0": (t, 6.0 * t)})
    rows = energy.power_rows(frame)
    got = energy.device_energy(rows, "rpi-1", T0 + 2.0, T0 + 7.0)
    assert got.method == "counter" and got.scope == "board"
    assert got.joules == pytest.approx(30.0)
    assert got.covered_s == pytest.approx(5.0)
    trapz = energy.device_energy(energy.power_rows(frame[frame["metric"] == "power_w.rapl.package-0"]),
                                 "rpi-1", T0 + 2.0, T0 + 7.0)
    assert trapz.method == "trapezoid" and trapz.joules == pytest.approx(25.0)
    none = energy.device_energy(rows, "elsewhere", T0, T0 + 1)
    assert none.method == "none" and math.isnan(none.joules)


def test_counters_of_two_programs_are_never_mixed() -> None:
    """Each wrapper's counter starts at 0: the series that covers the window is used whole."""
    early = np.arange(0.0, 4.0001, 0.1)
    late = np.arange(3.0, 10.0001, 0.1)
    frame = pd.concat([
        metrics_frame({"energy_j.nvml.gpu0": (early, 30.0 * early),
                       "power_w.nvml.gpu0": (early, np.full(len(early), 30.0))}, program="a", pid=1),
        metrics_frame({"energy_j.nvml.gpu0": (late, 30.0 * (late - 3.0)),
                       "power_w.nvml.gpu0": (late, np.full(len(late), 30.0))}, program="b", pid=2),
    ])
    got = energy.device_energy(energy.power_rows(frame), "rpi-1", T0 + 4.5, T0 + 9.5)
    assert got.joules == pytest.approx(150.0)


def run_frames() -> tuple:
    """Two split tests on an edge board at known power, marked inference windows in results."""
    t = np.arange(0.0, 20.0001, 0.1)
    frames, results = [], []
    for i, (split, watts) in enumerate([("layer2", 4.0), ("on_device", 8.0)]):
        test = "testcases/s/test_s.py::test_s[%s-fp16]" % split
        ts = t + 100.0 * i
        frames.append(metrics_frame({"power_w.VDD_IN": (ts, np.full(len(t), watts)),
                                     "cpu_percent": (ts, np.full(len(t), 50.0))}, test=test))
        frames.append(metrics_frame({"power_w.meter": (ts, np.full(len(t), 100.0))}, device="server",
                                    test=test, program="tail"))
        results.append({"test": test, "split": split, "encoding": "fp16", "queries": 50,
                        "p50_ms": 20.0 + 10 * i, "device": "rpi-1",
                        "t_start": T0 + 100.0 * i + 5.0, "t_end": T0 + 100.0 * i + 15.0})
    return pd.concat(frames, ignore_index=True), pd.DataFrame(results)


def test_energy_per_program_and_per_test_cover_each_window() -> None:
    metrics, _ = run_frames()
    per_test = energy.energy_per_test(metrics)
    edge = per_test[per_test["device"] == "rpi-1"].sort_values("test")
    assert list(edge["scope"]) == ["board", "board"]
    assert sorted(edge["joules"].round(6)) == [80.0, 160.0]  # 4 W and 8 W over 20 s
    per_program = energy.energy_per_program(metrics)
    assert set(per_program["program"]) == {"head", "tail"}
    assert per_program[per_program["device"] == "server"]["joules"].round(6).tolist() == [2000.0, 2000.0]


def test_joules_per_inference_per_cut_and_encoding() -> None:
    metrics, results = run_frames()
    table = energy.inference_energy(results, metrics)
    assert set(table["window"]) == {"marked"} and set(table["device"]) == {"rpi-1"}
    assert table["j_per_inference"].round(6).tolist() == [0.8, 1.6]  # 4 W x 10 s / 50, 8 W x 10 s / 50
    assert table["latency_ms"].tolist() == [20.0, 30.0]
    objective = energy.joules_per_inference(results, metrics)
    assert objective == {("layer2", "fp16"): pytest.approx(0.8), ("on_device", "fp16"): pytest.approx(1.6)}
    # Without a device column every device of the test counts: edge + server per inference.
    system = energy.joules_per_inference(results.drop(columns=["device"]), metrics)
    assert system[("layer2", "fp16")] == pytest.approx(0.8 + 100.0 * 10 / 50)
    only_server = energy.joules_per_inference(results.drop(columns=["device"]), metrics, device="server")
    assert only_server[("on_device", "fp16")] == pytest.approx(20.0)


def test_rows_without_boundaries_use_their_test_window() -> None:
    metrics, results = run_frames()
    table = energy.inference_energy(results.drop(columns=["t_start", "t_end"]), metrics)
    assert set(table["window"]) == {"test"}
    assert table["j_per_inference"].round(6).tolist() == [1.6, 3.2]  # 20 s of the test / 50


def test_federated_joules_per_round_per_client() -> None:
    t = np.arange(0.0, 30.0001, 0.1)
    frame = pd.concat([metrics_frame({"power_w.pmic": (t, np.full(len(t), w))}, device=dev, program="node")
                       for dev, w in (("rpi-1", 3.0), ("rpi-2", 5.0))])
    rows = pd.DataFrame([{"test": "t.py::test_a", "round": r, "client": dev, "t_start": T0 + 10 * r,
                          "t_end": T0 + 10 * r + 4.0} for r in (0, 1, 2) for dev in ("rpi-1", "rpi-2")]
                        + [{"test": "t.py::test_a", "round": 0, "client": None}])
    got = energy.joules_per_inference(rows[rows["client"].notna()], frame, by=("round", "client"),
                                      device_column="client")
    assert got[(1, "rpi-1")] == pytest.approx(12.0) and got[(2, "rpi-2")] == pytest.approx(20.0)


def test_power_timeline_sums_the_basis_and_pareto_front_keeps_the_undominated() -> None:
    t = np.arange(0.0, 5.0001, 0.5)
    frame = metrics_frame({"power_w.rapl.package-0": (t, np.full(len(t), 6.0)),
                           "power_w.nvml.gpu0": (t + 0.25, np.full(len(t), 30.0)),
                           "power_w.rapl.package-0.core": (t, np.full(len(t), 4.0))})
    line = energy.power_timeline(energy.power_rows(frame), "rpi-1")
    assert len(line) > len(t) and set(line["watts"].round(6)) == {36.0}
    points: List[tuple] = [(10.0, 5.0), (20.0, 2.0), (15.0, 6.0), (30.0, 2.5), (5.0, 9.0)]
    assert energy.pareto_front(points) == [4, 0, 1]
    assert energy.pareto_front([]) == []
