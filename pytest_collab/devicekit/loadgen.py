"""MLPerf-LoadGen-style load on the head device (stdlib + numpy for the seeded schedule).

Single-stream issues the next query when the last returns; server mode is open loop
with Poisson arrivals at a fixed rate, and a query's latency counts from its *scheduled*
send time (so a late query is charged its queueing). Every query also gets the device's
wall-clock ``t_start``/``t_end`` (epoch seconds, when it actually ran), so per-query
results line up with the lab's metrics.parquet. Percentiles and the summary: stats.py.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

Query = Callable[[int], Any]


@dataclass
class Run:
    """What a load run measured, one entry per query in query order."""

    latency_s: list[float]
    results: list[Any]
    wall_s: float
    t_start: list[float] = field(default_factory=list)   # epoch s on this device, query began
    t_end: list[float] = field(default_factory=list)     # epoch s on this device, query returned


def poisson_schedule(n: int, rate_qps: float, seed: int = 0) -> list[float]:
    """Send offsets (s from start) of ``n`` queries with exponential gaps of mean 1/rate."""
    if rate_qps <= 0:
        raise ValueError(f"--rate {rate_qps}: the server scenario needs a positive query rate")
    gaps = np.random.default_rng(seed).exponential(1.0 / rate_qps, size=n)
    return np.concatenate([[0.0], np.cumsum(gaps[:-1])]).tolist() if n else []


def _clock() -> Callable[[float], float]:
    """perf_counter -> epoch seconds, anchored once: monotonic spacing, wall-clock origin."""
    wall, perf = time.time(), time.perf_counter()
    return lambda t: wall + (t - perf)


def run_single_stream(query: Query, n: int) -> Run:
    """Issue query i when query i-1 has returned; latency = its own duration."""
    epoch = _clock()
    run = Run([], [], 0.0)
    t_begin = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        run.results.append(query(i))
        t1 = time.perf_counter()
        run.latency_s.append(t1 - t0)
        run.t_start.append(epoch(t0))
        run.t_end.append(epoch(t1))
    run.wall_s = time.perf_counter() - t_begin
    return run


def run_server(query: Query, schedule: Sequence[float], workers: int = 2) -> Run:
    """Open loop: query i is due at ``schedule[i]``; latency counts from that due time, so a
    saturated system shows growing latency rather than a quietly lower rate."""
    n = len(schedule)
    epoch = _clock()
    run = Run([0.0] * n, [None] * n, 0.0, [0.0] * n, [0.0] * n)
    lock = threading.Lock()
    t_begin = time.perf_counter()

    def one(i: int) -> None:
        t0 = time.perf_counter()
        out = query(i)
        t1 = time.perf_counter()
        with lock:
            run.results[i] = out
            run.latency_s[i] = t1 - (t_begin + schedule[i])
            run.t_start[i], run.t_end[i] = epoch(t0), epoch(t1)

    with ThreadPoolExecutor(workers, thread_name_prefix="query") as pool:
        futures = []
        for i, due in enumerate(schedule):
            delay = t_begin + due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(one, i))
        for f in futures:
            f.result()
    run.wall_s = time.perf_counter() - t_begin
    return run
