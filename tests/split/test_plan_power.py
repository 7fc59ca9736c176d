"""Board power of a profile pass and J per inference of a measured cut, from samples a test holds."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from pytest_collab.split import power

pytest.importorskip("pandas")


def _program(device, samples):
    return SimpleNamespace(device=SimpleNamespace(name=device), power_samples=lambda: samples)


def test_mean_power_of_a_window_between_samples():
    # 10 Hz samples of a board ramping 2 W -> 4 W over 1 s: the mean over [0.25, 0.75] is 3 W
    ramp = _program("rpi-1", [(100.0 + i / 10, {"power_w.meter": 2.0 + 2.0 * i / 10}) for i in range(11)])
    watts, covered = power.mean_power(ramp, 100.25, 100.75)
    assert watts == pytest.approx(3.0) and covered == pytest.approx(0.5)
    assert power.mean_power(_program("rpi-1", []), 100.0, 101.0) == (None, 0.0)
    assert power.has_power(["temp_c.cpu", "power_w.meter"]) and not power.has_power(["temp_c.cpu"])


def test_measured_energy_counts_the_edge_per_query_and_the_server_at_work():
    edge = _program("rpi-1", [(t / 10, {"power_w.meter": 3.0}) for t in range(30)])
    server = _program("server-1", [(1000 + t / 10, {"power_w.meter": 50.0}) for t in range(30)])
    # two queries of 0.2 s on the edge; the server (its own clock) works 0.05 s on each
    row = {"t_start": [1.0, 1.5], "t_end": [1.2, 1.7], "tail_t_start": [1001.1, 1001.6],
           "tail_t_end": [1001.15, 1001.65]}
    got = power.measured_energy(edge, server, row)
    assert got["measured_edge_j"] == pytest.approx(3.0 * 0.2)
    assert got["measured_server_j"] == pytest.approx(50.0 * 0.05)
    assert got["measured_j"] == pytest.approx(0.6 + 2.5)
    alone = power.measured_energy(edge, None, {"t_start": [1.0], "t_end": [1.2]})   # on device
    assert alone["measured_server_j"] == 0.0 and alone["measured_j"] == pytest.approx(0.6)
    dark = power.measured_energy(_program("rpi-1", []), None, {"t_start": [1.0], "t_end": [1.2]})
    assert dark["measured_j"] != dark["measured_j"]     # NaN: no power, not zero
