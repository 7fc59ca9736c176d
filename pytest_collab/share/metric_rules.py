"""What a metric's name says: which direction is better, and how much change is noise.

One home for both rules (the report's headline, ``collab compare`` and replay gates ask
here). Direction comes from the *quantity* a column measures (its tokens: ``qps``,
``throughput``, ``accuracy`` higher; ``latency``, ``ms``, ``bytes``, ``loss`` lower),
never from a qualifier: ``qps_with_overhead`` is a rate, so higher is better.

A column that says *when* something happened (``t_start``, ``t_end``, ``tail_t_start``,
``timestamp``: wall-clock or epoch times) is no metric at all: it differs in every run and
has no better direction, so compare and replay skip it like a provenance column.

Tolerance, when nobody declared one, comes from the runs' own spread: the baseline's
samples (a ``list<double>`` column: its interquartile range relative to its median) or
the same row over several baseline runs (their range). Only without any spread does a
family default apply (accuracy 1 %, loss 5 %, times 25 %, bytes 10 %, rates 25 %).
"""
from __future__ import annotations

import fnmatch
import re
from typing import Any

from pytest_collab.errors import CollabError

_HIGHER = {"accuracy", "acc", "top1", "top5", "fidelity", "agreement", "throughput", "mbps", "gbps",
           "mbit", "gbit", "fps", "f1", "precision", "recall", "psnr", "ssim", "iou", "map", "rps", "qps",
           "speedup", "goodput", "hits", "ops", "tps"}
_LOWER = {"latency", "time", "ms", "us", "ns", "s", "sec", "seconds", "rtt", "duration", "bytes",
          "loss", "error", "errors", "energy", "joules", "j", "wh", "rss", "memory", "mb", "wait",
          "failed", "failures", "lost", "drops", "dropped", "retries", "jitter"}
#: qualifiers that say nothing about direction (skipped when reading a name)
_QUALIFIERS = {"with", "without", "overhead", "mean", "median", "avg", "max", "min", "total", "p50", "p90",
               "p95", "p99", "p999", "per", "abs", "global", "final", "local", "e2e"}
_TIGHT = {"accuracy", "acc", "top1", "top5", "fidelity", "agreement", "f1", "precision", "recall", "psnr",
          "ssim", "iou"}
_TIMES = {"latency", "time", "ms", "us", "ns", "s", "sec", "seconds", "rtt", "duration", "wait"}
#: a column with one of these tokens is a point in time ...
_WHEN = {"timestamp", "timestamps", "ts"}
#: ... and so is one with a ``t`` token (``t_start``, ``t0``) unless a duration unit follows
_DURATION_UNITS = {"ms", "us", "ns", "s", "sec", "seconds"}
#: a spread-based tolerance is this many times the measured relative spread ...
SPREAD_FACTOR = 2.0
#: ... and never tighter than this (identical repeats would otherwise flag any change)
MIN_RELATIVE = 0.05
ALPHA = 0.001  # significance a sample-list change must reach to fail


def tokens(metric: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", metric.lower()) if t]


def is_timestamp(column: str) -> bool:
    """Whether ``column`` holds points in time rather than a measured amount: ``t_start``,
    ``tail_t_end``, ``t0``, ``timestamp``, ``send_ts``; ``t_infer_ms`` is a duration."""
    words = set(tokens(column))
    if words & _WHEN:
        return True
    return any(re.fullmatch(r"t\d*", w) for w in words) and not words & _DURATION_UNITS


def direction(metric: str) -> str | None:
    """``"lower"`` or ``"higher"`` is better, or None when the name does not say.

    The unit suffix speaks loudest (``…_ms``, ``…_mbps``), then the quantity; qualifiers
    such as ``overhead`` or ``with`` are not quantities.
    """
    for token in reversed(tokens(metric)):
        if token in _QUALIFIERS:
            continue
        if token in _HIGHER:
            return "higher"
        if token in _LOWER:
            return "lower"
    return None


def default_tolerance(metric: str, samples: bool, spread: float | None = None) -> dict[str, float] | None:
    """The rule a metric gets when nobody declared one (None: it never fails).

    ``spread`` is the relative spread measured in the runs themselves; it sets the
    relative bound (SPREAD_FACTOR x spread, at least MIN_RELATIVE) whenever known.
    """
    words = set(tokens(metric))
    better = direction(metric)
    if better is None and not words & (_TIGHT | _TIMES | {"loss", "bytes"}):
        return None  # a column whose better direction is unknown never fails
    rule: dict[str, float] = {}
    if samples:
        rule["statistical"] = ALPHA
    if spread is not None:
        rule["relative"] = round(max(MIN_RELATIVE, SPREAD_FACTOR * spread), 4)
        rule["spread"] = 1.0  # marks the bound as measured, for describe_tolerance
        return rule
    if words & _TIGHT:
        rule["relative"] = 0.01
    elif "loss" in words:
        rule["relative"] = 0.05
    elif "bytes" in words:
        rule["relative"] = 0.10
    else:
        rule["relative"] = 0.25
    return rule


def tolerance_for(metric: str, samples: bool, tolerances: dict[str, Any] | None,
                  spread: float | None = None) -> dict[str, float] | None:
    """Exact name, then the longest matching glob, then the default; "ignore"/null never fails."""
    rules = {k: v for k, v in (tolerances or {}).items() if k != "keys"}
    if metric in rules:
        rule = rules[metric]
    else:
        globs = sorted((k for k in rules if fnmatch.fnmatchcase(metric, k)), key=len, reverse=True)
        if not globs:
            return default_tolerance(metric, samples, spread)
        rule = rules[globs[0]]
    if rule in (None, "ignore") or rule == {}:
        return None
    if not isinstance(rule, dict) or not set(rule) <= {"relative", "absolute", "statistical"}:
        raise CollabError(f"tolerances: {metric!r}: expected a mapping with relative, absolute and/or "
                          f"statistical, or 'ignore'; got {rule!r}")
    return {k: float(v) for k, v in rule.items()}


def describe_tolerance(rule: dict[str, float] | None) -> str:
    if not rule:
        return "-"
    parts = []
    if "statistical" in rule:
        parts.append(f"p<{rule['statistical']:g}")
    if "relative" in rule:
        parts.append(f"±{rule['relative']:.0%}" + (" (from spread)" if rule.get("spread") else ""))
    if "absolute" in rule:
        parts.append(f"±{rule['absolute']:g}")
    return " & ".join(parts)


def sample_spread(values: Any) -> float | None:
    """Relative interquartile range of a sample list (None with fewer than 4 values)."""
    import numpy as np

    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if arr.size < 4:
        return None
    q1, median, q3 = np.percentile(arr, [25, 50, 75])
    return float((q3 - q1) / abs(median)) if median else None


def runs_spread(values: list[float | None]) -> float | None:
    """Relative range of one value over several baseline runs (None with fewer than 2)."""
    import numpy as np

    arr = np.asarray([v for v in values if v is not None], dtype=float)
    if arr.size < 2:
        return None
    median = float(np.median(arr))
    return float((arr.max() - arr.min()) / abs(median)) if median else None
