"""Rates from cumulative counters over *sound* intervals.

Why: a rate over a very short interval is noise. The wrapper's last sample is taken
when the program exits, often a millisecond after the one before; CPU seconds over
1.6 ms gave "CPU % peak 570.2" on a 2-core machine. An interval shorter than half the
run's typical sampling interval is merged with its neighbour (the next one, or the
previous one for the last sample) instead of becoming a point of its own.
"""
from __future__ import annotations

from typing import Any

#: an interval shorter than this fraction of the median interval is merged
MIN_FRACTION = 0.5


def min_interval(times: Any) -> float:
    """Half the median gap between consecutive samples (0 with fewer than 2)."""
    import numpy as np

    t = np.sort(np.asarray(times, dtype=float))
    gaps = np.diff(t)
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) * MIN_FRACTION if gaps.size else 0.0


def sound_rates(times: Any, counter: Any, min_dt: float | None = None) -> tuple[Any, Any]:
    """``(t, rate)`` of a cumulative ``counter`` sampled at ``times`` (seconds, sorted).

    Each rate covers at least ``min_dt`` seconds (default :func:`min_interval`); a
    trailing short interval is folded into the one before it, so nothing measured is
    dropped and no rate rests on a sliver of time.
    """
    import numpy as np

    t = np.asarray(times, dtype=float)
    v = np.asarray(counter, dtype=float)
    if min_dt is None:
        min_dt = min_interval(t)
    out_t: list[float] = []
    out_r: list[float] = []
    starts: list[int] = []
    anchor = 0
    for i in range(1, len(t)):
        dt = t[i] - t[anchor]
        if dt > 0 and dt >= min_dt:
            out_t.append(float(t[i]))
            out_r.append(float((v[i] - v[anchor]) / dt))
            starts.append(anchor)
            anchor = i
    last = len(t) - 1
    if starts and anchor < last:  # a short tail: widen the last interval to the end
        begin = starts[-1]
        out_t[-1] = float(t[last])
        out_r[-1] = float((v[last] - v[begin]) / (t[last] - t[begin]))
    return np.asarray(out_t), np.asarray(out_r)


def sound_samples(times: Any, values: Any, min_dt: float | None = None) -> tuple[Any, Any]:
    """Already-computed per-interval values (an old run's ``cpu_percent``): drop those
    whose interval to the previous sample is shorter than ``min_dt``."""
    import numpy as np

    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    if min_dt is None:
        min_dt = min_interval(t)
    if len(t) < 2:
        return t, v
    keep = np.concatenate([[True], np.diff(t) >= min_dt])
    return t[keep], v[keep]
