"""loadgen and stats: nearest-rank percentiles, LoadGen's sample-count rules, schedules,
the device's own timestamps per query, lower bound."""
from __future__ import annotations

import time

import numpy as np
import pytest

from pytest_collab.devicekit import loadgen, stats


def test_nearest_rank_is_a_sample_not_an_interpolation():
    xs = [15, 20, 35, 40, 50]
    assert stats.nearest_rank(xs, 30) == 20
    assert stats.nearest_rank(xs, 40) == 20
    assert stats.nearest_rank(xs, 50) == 35
    assert stats.nearest_rank(xs, 100) == 50
    assert stats.nearest_rank(list(range(1, 101)), 90) == 90
    assert stats.nearest_rank(list(range(1, 101)), 99) == 99
    with pytest.raises(ValueError):
        stats.nearest_rank([], 50)


@pytest.mark.parametrize("n, p90_low, p99_low", [(63, True, True), (64, False, True),
                                                 (661, False, True), (662, False, False)])
def test_confidence_flags_follow_loadgen_minimums(n, p90_low, p99_low):
    s = stats.summarize([0.001 * (i + 1) for i in range(n)], wall_s=10.0)
    assert (s["p90_low_confidence"], s["p99_low_confidence"]) == (p90_low, p99_low)
    assert s["p50_ms"] == pytest.approx(stats.nearest_rank(range(1, n + 1), 50))


def test_throughput_with_and_without_overhead():
    s = stats.summarize([0.1] * 10, wall_s=2.0, per_query=4)
    assert s["qps_with_overhead"] == pytest.approx(20.0)
    assert s["qps_without_overhead"] == pytest.approx(40.0)


def test_poisson_schedule_rate_and_determinism():
    a = loadgen.poisson_schedule(4000, 50.0, seed=1)
    assert a[0] == 0 and np.all(np.diff(a) >= 0)
    assert 4000 / a[-1] == pytest.approx(50.0, rel=0.06)
    assert np.array_equal(a, loadgen.poisson_schedule(4000, 50.0, seed=1))


def test_server_mode_charges_queueing_from_scheduled_time():
    # 5 queries due at once, each 20 ms, one worker: the last waits for four others.
    run = loadgen.run_server(lambda i: time.sleep(0.02) or i, [0.0] * 5, workers=1)
    lat = run.latency_s
    assert run.results == list(range(5))
    assert lat[4] >= 0.095 and max(lat) == lat[4]
    single = loadgen.run_single_stream(lambda i: time.sleep(0.02), 5)
    assert max(single.latency_s) < 0.09


@pytest.mark.parametrize("mode", ["single", "server"])
def test_every_query_carries_the_devices_own_epoch_timestamps(mode):
    """t_start/t_end are wall-clock seconds of when each query ran, so per-query results
    line up with metrics.parquet (sampled on the same device clock)."""
    before = time.time()
    if mode == "single":
        run = loadgen.run_single_stream(lambda i: time.sleep(0.01), 4)
    else:
        run = loadgen.run_server(lambda i: time.sleep(0.01), [0.0, 0.05, 0.1, 0.15], workers=2)
    after = time.time()
    assert len(run.t_start) == len(run.t_end) == 4
    for s, e in zip(run.t_start, run.t_end):
        assert before <= s < e <= after + 1e-3 and e - s >= 0.0095
    assert run.t_start == sorted(run.t_start)
    if mode == "server":  # started when due (150 ms after the schedule's origin), not back to back;
        # measured from before the run, as the first query may itself start late under load
        assert run.t_start[3] - before >= 0.149


def test_stats_module_is_the_one_percentile_of_link_baseline():
    """link_baseline's client reports with the kit's nearest_rank, not a copy of it."""
    from pathlib import Path

    client = (Path(__file__).resolve().parents[1] / "testcases" / "link_baseline" / "client.py").read_text()
    assert "from collab_devicekit.stats import nearest_rank" in client and "def percentile" not in client
    assert stats.median([3.0, 1.0, 2.0, 10.0]) == 2.0   # a measured sample, not 2.5


def test_lower_bound_adds_transfer_at_link_speed():
    assert stats.lower_bound_s(0.01, 1e6, 1e8, 0.02) == pytest.approx(0.04)
    assert stats.lower_bound_s(0.01, 0, None, 0.02) == pytest.approx(0.03)
