"""loadgen: nearest-rank percentiles, LoadGen's sample-count rules, schedules, lower bound."""
from __future__ import annotations

import time

import numpy as np
import pytest

import split_helpers  # noqa: F401
import loadgen


def test_nearest_rank_is_a_sample_not_an_interpolation():
    xs = [15, 20, 35, 40, 50]
    assert loadgen.nearest_rank(xs, 30) == 20
    assert loadgen.nearest_rank(xs, 40) == 20
    assert loadgen.nearest_rank(xs, 50) == 35
    assert loadgen.nearest_rank(xs, 100) == 50
    assert loadgen.nearest_rank(list(range(1, 101)), 90) == 90
    assert loadgen.nearest_rank(list(range(1, 101)), 99) == 99
    with pytest.raises(ValueError):
        loadgen.nearest_rank([], 50)


@pytest.mark.parametrize("n, p90_low, p99_low", [(63, True, True), (64, False, True),
                                                 (661, False, True), (662, False, False)])
def test_confidence_flags_follow_loadgen_minimums(n, p90_low, p99_low):
    s = loadgen.summarize([0.001 * (i + 1) for i in range(n)], wall_s=10.0)
    assert (s["p90_low_confidence"], s["p99_low_confidence"]) == (p90_low, p99_low)
    assert s["p50_ms"] == pytest.approx(loadgen.nearest_rank(range(1, n + 1), 50))


def test_throughput_with_and_without_overhead():
    s = loadgen.summarize([0.1] * 10, wall_s=2.0, per_query=4)
    assert s["qps_with_overhead"] == pytest.approx(20.0)
    assert s["qps_without_overhead"] == pytest.approx(40.0)


def test_poisson_schedule_rate_and_determinism():
    a = loadgen.poisson_schedule(4000, 50.0, seed=1)
    assert a[0] == 0 and np.all(np.diff(a) >= 0)
    assert 4000 / a[-1] == pytest.approx(50.0, rel=0.06)
    assert np.array_equal(a, loadgen.poisson_schedule(4000, 50.0, seed=1))


def test_server_mode_charges_queueing_from_scheduled_time():
    # 5 queries due at once, each 20 ms, one worker: the last waits for four others.
    lat, res, wall = loadgen.run_server(lambda i: time.sleep(0.02) or i, [0.0] * 5, workers=1)
    assert res == list(range(5))
    assert lat[4] >= 0.095 and max(lat) == lat[4]
    lat1, _, _ = loadgen.run_single_stream(lambda i: time.sleep(0.02), 5)
    assert max(lat1) < 0.09


def test_lower_bound_adds_transfer_at_link_speed():
    assert loadgen.lower_bound_s(0.01, 1e6, 1e8, 0.02) == pytest.approx(0.04)
    assert loadgen.lower_bound_s(0.01, 0, None, 0.02) == pytest.approx(0.03)
