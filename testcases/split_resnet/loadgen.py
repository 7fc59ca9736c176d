"""MLPerf-LoadGen-style load and summaries (device side: stdlib + numpy).

Rules taken from LoadGen: latency counts from each query's *scheduled* send time (so a
late query is charged its queueing), percentiles are nearest-rank, and a p90 is trusted
only with >= 64 samples and a p99 with >= 662 (below that they are reported but flagged
``low_confidence``). Single-stream issues the next query when the last returns; server
mode is open loop with Poisson arrivals at a fixed rate.
"""
from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np

MIN_SAMPLES = {50: 1, 90: 64, 99: 662}


def nearest_rank(samples: Sequence[float], pct: float) -> float:
    """The smallest sample with at least ``pct`` % of samples <= it (no interpolation)."""
    if not samples:
        raise ValueError("nearest_rank of no samples: run at least one query")
    if not 0 < pct <= 100:
        raise ValueError(f"percentile {pct} outside (0, 100]")
    ordered = sorted(samples)
    return float(ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1])


def summarize(latencies_s: Sequence[float], wall_s: float, busy_s: float | None = None,
              per_query: int = 1) -> dict[str, Any]:
    """Percentiles (ms) with their confidence flags and the two throughputs.

    ``wall_s`` is the whole run including the harness (input prep, fidelity checks):
    ``qps_with_overhead``. ``busy_s`` is the time spent inside queries only:
    ``qps_without_overhead`` (defaults to the sum of latencies).
    """
    n = len(latencies_s)
    out: dict[str, Any] = {"queries": n, "samples_per_query": per_query}
    for pct, need in MIN_SAMPLES.items():
        out[f"p{pct}_ms"] = nearest_rank(latencies_s, pct) * 1e3 if n else float("nan")
        out[f"p{pct}_low_confidence"] = n < need
    out["mean_ms"] = float(np.mean(latencies_s)) * 1e3 if n else float("nan")
    busy = float(sum(latencies_s)) if busy_s is None else busy_s
    out["qps_with_overhead"] = n * per_query / wall_s if wall_s > 0 else float("nan")
    out["qps_without_overhead"] = n * per_query / busy if busy > 0 else float("nan")
    return out


def poisson_schedule(n: int, rate_qps: float, seed: int = 0) -> np.ndarray:
    """Send offsets (s from start) of ``n`` queries with exponential gaps of mean 1/rate."""
    if rate_qps <= 0:
        raise ValueError(f"--rate {rate_qps}: the server scenario needs a positive query rate")
    gaps = np.random.default_rng(seed).exponential(1.0 / rate_qps, size=n)
    return np.concatenate([[0.0], np.cumsum(gaps[:-1])]) if n else gaps


Query = Callable[[int], Any]


def run_single_stream(query: Query, n: int) -> tuple[list[float], list[Any], float]:
    """Issue query i when query i-1 has returned; latency = its own duration."""
    lat, res = [], []
    t_start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        res.append(query(i))
        lat.append(time.perf_counter() - t0)
    return lat, res, time.perf_counter() - t_start


def run_server(query: Query, schedule: Sequence[float], workers: int = 2) -> tuple[list[float], list[Any], float]:
    """Open loop: query i is due at ``schedule[i]``; latency counts from that due time, so a
    saturated system shows growing latency rather than a quietly lower rate."""
    n = len(schedule)
    lat: list[float] = [0.0] * n
    res: list[Any] = [None] * n
    lock = threading.Lock()
    t_start = time.perf_counter()

    def run(i: int) -> None:
        out = query(i)
        with lock:
            res[i] = out
            lat[i] = time.perf_counter() - (t_start + schedule[i])

    with ThreadPoolExecutor(workers, thread_name_prefix="query") as pool:
        futures = []
        for i, due in enumerate(schedule):
            delay = t_start + due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(run, i))
        for f in futures:
            f.result()
    return lat, res, time.perf_counter() - t_start


def lower_bound_s(head_s: float, wire_bytes: float, link_bps: float | None, tail_s: float) -> float:
    """Analytic floor of one query: head compute + wire bytes / link throughput + tail compute."""
    transfer = wire_bytes / link_bps if (link_bps and wire_bytes) else 0.0
    return head_s + transfer + tail_s
