"""The statistics every device program reports: one percentile, one LoadGen summary.

Standard library only, so a program that needs nothing else (link_baseline's client)
uses the very same numbers as the split programs. Rules taken from MLPerf LoadGen:
percentiles are nearest-rank (always a measured sample, never an interpolation), and a
p90 is trusted only with >= 64 samples and a p99 with >= 662 (below that they are still
reported, flagged ``low_confidence``).
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

MIN_SAMPLES = {50: 1, 90: 64, 99: 662}


def nearest_rank(samples: Iterable[float], pct: float) -> float:
    """The smallest sample with at least ``pct`` % of samples <= it (no interpolation)."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("nearest_rank of no samples: run at least one query")
    if not 0 < pct <= 100:
        raise ValueError(f"percentile {pct} outside (0, 100]")
    return float(ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1])


def percentiles_ms(samples_s: Sequence[float], prefix: str = "p") -> dict[str, Any]:
    """``{prefix}50_ms``, ``{prefix}90_ms``, ``{prefix}99_ms`` of seconds, with LoadGen's flags."""
    n = len(samples_s)
    out: dict[str, Any] = {}
    for pct, need in MIN_SAMPLES.items():
        out[f"{prefix}{pct}_ms"] = nearest_rank(samples_s, pct) * 1e3 if n else float("nan")
        out[f"{prefix}{pct}_low_confidence"] = n < need
    return out


def summarize(latencies_s: Sequence[float], wall_s: float, busy_s: float | None = None,
              per_query: int = 1) -> dict[str, Any]:
    """Percentiles (ms) with their confidence flags and the two throughputs.

    ``wall_s`` is the whole run including the harness (input prep, fidelity checks):
    ``qps_with_overhead``. ``busy_s`` is the time spent inside queries only:
    ``qps_without_overhead`` (defaults to the sum of latencies).
    """
    n = len(latencies_s)
    out: dict[str, Any] = {"queries": n, "samples_per_query": per_query, **percentiles_ms(latencies_s)}
    out["mean_ms"] = math.fsum(latencies_s) / n * 1e3 if n else float("nan")
    busy = math.fsum(latencies_s) if busy_s is None else busy_s
    out["qps_with_overhead"] = n * per_query / wall_s if wall_s > 0 else float("nan")
    out["qps_without_overhead"] = n * per_query / busy if busy > 0 else float("nan")
    return out


def median(samples: Iterable[float]) -> float:
    """The nearest-rank median (a measured sample), the value every ``*_p50`` column holds."""
    return nearest_rank(samples, 50)


def lower_bound_s(head_s: float, wire_bytes: float, link_bps: float | None, tail_s: float) -> float:
    """Analytic floor of one query: head compute + wire bytes / link throughput + tail compute."""
    transfer = wire_bytes / link_bps if (link_bps and wire_bytes) else 0.0
    return head_s + transfer + tail_s
