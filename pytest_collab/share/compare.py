"""Compare two runs' results: align rows, take deltas, judge them against tolerances.

Rows are aligned by test case, test id (the node id below ``testcases/<name>/``, so a
test case imported elsewhere still lines up), the test's parameters, and the columns
that say *which* measurement a row is: the experiment's headline columns, names such
as ``size_bytes`` (:data:`KEY_HINTS`) and a bundle's ``keys``; never a measured value or
flag (``p90_low_confidence``). Every other numeric column is a metric; a ``list<double>``
column is a sample distribution and gets a significance test (Mann-Whitney U through
scipy when installed, else a permutation test). Rows found in one run only are listed,
never dropped; rows sort with numbers as numbers (1 KiB before 16 KiB).

A tolerance per metric decides pass/fail (a regression gate for replays); direction
and defaults live in :mod:`pytest_collab.share.metric_rules` (tolerance from the runs'
own spread); a bundle's ``tolerances`` mapping overrides them by exact name or glob.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_collab.results.records import PROVENANCE, RESULTS_LEAD
from pytest_collab.share.metric_rules import (
    default_tolerance,
    describe_tolerance,
    direction,
    is_timestamp,
    sample_spread,
    tolerance_for,
)
from pytest_collab.testcase import test_id

if TYPE_CHECKING:  # pragma: no cover
    import pandas

#: provenance columns every result row carries: never keys nor metrics
SKIP = (*RESULTS_LEAD, *PROVENANCE)


def is_metric_column(name: str, keys: list[str]) -> bool:
    """Neither provenance, nor a row key, nor a point in time (``t_start``): a metric."""
    return name not in SKIP and name not in keys and not is_timestamp(name)
#: recorded columns that identify a measurement rather than measure something
KEY_HINTS = ("size_bytes", "size", "split", "round", "step", "epoch", "client", "batch_size",
             "partition", "codec", "model", "quant_bits", "kind", "encoding", "transport")
ALPHA = 0.05  # significance shown in tables; gates use their own alpha
__all__ = ["ALPHA", "Comparison", "MetricDelta", "RowDelta", "compare_frames", "compare_runs",
           "default_tolerance", "describe_tolerance", "direction", "is_metric_column", "key_columns", "load_results",
           "permutation_test", "significance", "tolerance_for"]


# ---------------------------------------------------------------- statistics
def permutation_test(a: Any, b: Any, rounds: int = 2000, seed: int = 0) -> float:
    """Two-sided p-value of the difference in medians; seeded, so a run repeats exactly."""
    import numpy as np

    x, y = np.asarray(a, float), np.asarray(b, float)
    observed = abs(np.median(x) - np.median(y))
    pooled = np.concatenate([x, y])
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(rounds):
        rng.shuffle(pooled)
        hits += abs(np.median(pooled[:len(x)]) - np.median(pooled[len(x):])) >= observed - 1e-12
    return (hits + 1) / (rounds + 1)


def significance(a: Any, b: Any) -> tuple[float | None, str | None]:
    """(p-value, test name) for two samples; (None, None) with fewer than 3 each."""
    if len(a) < 3 or len(b) < 3:
        return None, None
    try:
        from scipy.stats import mannwhitneyu
    except ImportError:
        return permutation_test(a, b), "permutation"
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue), "mann-whitney"


# ---------------------------------------------------------------- data model
@dataclass
class MetricDelta:
    metric: str
    baseline: float | None
    current: float | None
    delta: float | None = None
    relative: float | None = None
    direction: str | None = None
    verdict: str = "same"          # better | worse | same | changed | missing
    p_value: float | None = None
    test: str | None = None
    tolerance: dict[str, float] | None = None
    failed: bool = False

    def describe(self) -> str:
        rel = "" if self.relative is None or math.isinf(self.relative) else f", {self.relative:+.0%}"
        p = "" if self.p_value is None else f", p={self.p_value:.2g}"
        return (f"{self.metric}: {_num(self.baseline)} -> {_num(self.current)}{rel}{p} "
                f"({self.verdict}; tolerance {describe_tolerance(self.tolerance)})")


@dataclass
class RowDelta:
    testcase: str
    test: str
    key: dict[str, Any]
    metrics: list[MetricDelta] = field(default_factory=list)

    @property
    def failed(self) -> list[MetricDelta]:
        return [m for m in self.metrics if m.failed]

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.key.items()) or "-"


@dataclass
class TestOutcome:
    testcase: str
    test: str
    passed: bool
    failing: list[str]


@dataclass
class Comparison:
    label_a: str
    label_b: str
    rows: list[RowDelta]
    only_a: list[dict[str, Any]]
    only_b: list[dict[str, Any]]

    @property
    def tests(self) -> list[TestOutcome]:
        grouped: dict[tuple[str, str], list[RowDelta]] = {}
        for row in self.rows:
            grouped.setdefault((row.testcase, row.test), []).append(row)
        return [TestOutcome(tc, t, not any(r.failed for r in rows),
                            [f"{m.describe()} [{r.label()}]" for r in rows for m in r.failed])
                for (tc, t), rows in grouped.items()]

    @property
    def failed_metrics(self) -> list[str]:
        return sorted({m.metric for r in self.rows for m in r.failed})

    @property
    def passed(self) -> bool:
        return not self.failed_metrics


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


# ---------------------------------------------------------------- alignment
def _is_samples(value: Any) -> bool:
    return hasattr(value, "__len__") and not isinstance(value, (str, bytes))


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return getattr(getattr(value, "dtype", None), "kind", None) in ("i", "u", "f") and not _is_samples(value)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def key_columns(results: pandas.DataFrame, info: dict[str, Any], keys: list[str] | None = None) -> list[str]:
    """Columns that say which measurement a row is: parameters, headline columns, key hints.

    Measured columns never are, whatever their type: a flag such as
    ``p90_low_confidence`` that flips between runs must not unmatch the row.
    """
    params = {p for t in (info.get("tests") or {}).values() for p in (t.get("params") or {})}
    declared = set(_headline_columns(results, info))
    return [name for name in results.columns if name not in SKIP and (
        name in params or name in declared or name in KEY_HINTS or name in (keys or ()))]


def _headline_columns(results: pandas.DataFrame, info: dict[str, Any]) -> list[str]:
    """The columns the run's experiments declared as identifying a row (HEADLINE)."""
    from pytest_collab.report.headline import declared_headline
    from pytest_collab.report.sections import load_testcase_sections

    if "testcase" not in results.columns:
        return []
    testcases = {str(t) for t in results["testcase"].dropna()}
    load_testcase_sections(testcases, [str(info.get("rootdir", ".")), "."])
    return [c for tc in sorted(testcases) for h in [declared_headline(tc)] if h for c in h.columns]


def sort_key(key: tuple) -> tuple:
    """Numbers by value, text by text, None first: sizes sort 1024 < 16384 < 262144."""
    return tuple((0, 0.0, "") if v is None else (1, float(v), "") if _is_number(v) else (2, 0.0, str(v))
                 for v in key)


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") and not _is_samples(value) else value


def aligned_rows(results: pandas.DataFrame, keys: list[str]) -> dict[tuple, dict[str, Any]]:
    """Aligned key -> row; repeated keys within a test get an occurrence number."""
    out: dict[tuple, dict[str, Any]] = {}
    seen: dict[tuple, int] = {}
    records: list[dict[str, Any]] = results.to_dict("records")  # type: ignore[assignment]
    for record in records:
        tc = str(record.get("testcase") or "")
        base = (tc, test_id(str(record["test"]), tc), *(_plain(record.get(k)) for k in keys))
        seen[base] = seen.get(base, 0) + 1
        out[(*base, seen[base])] = record
    return out


def _metric(name: str, a: Any, b: Any, tolerances: dict[str, Any] | None,
            spread: float | None = None) -> MetricDelta | None:
    a, b = _plain(a), _plain(b)
    samples = _is_samples(a) or _is_samples(b)
    if not samples and not (_is_number(a) or _is_number(b)):
        return None

    if spread is None and samples and a is not None:
        spread = sample_spread(a)  # the baseline's own scatter
    rule = tolerance_for(name, samples, tolerances, spread)
    out = MetricDelta(name, None, None, direction=direction(name), tolerance=rule)
    xa: Any = [float(v) for v in a] if samples and a is not None else a
    xb: Any = [float(v) for v in b] if samples and b is not None else b
    out.baseline = _centre(xa, samples)
    out.current = _centre(xb, samples)
    if out.baseline is None or out.current is None:
        out.verdict = "missing"
        out.failed = out.baseline is not None and rule is not None
        return out
    out.delta = out.current - out.baseline
    out.relative = (out.delta / abs(out.baseline) if out.baseline else (0.0 if out.delta == 0 else math.inf))
    if samples:
        out.p_value, out.test = significance(xa, xb)
    worse = (out.delta > 0) if out.direction == "lower" else (out.delta < 0)
    if out.delta == 0:
        out.verdict = "same"
    elif out.direction is None:
        out.verdict = "changed"
        worse = True
    else:
        out.verdict = "worse" if worse else "better"
    out.failed = rule is not None and worse and out.delta != 0 and _beyond(out, rule)
    return out


def _centre(value: Any, samples: bool) -> float | None:
    """A sample list's median, or the scalar itself (None when absent)."""
    import numpy as np

    if value is None:
        return None
    if samples:
        return float(np.median(value)) if len(value) else None
    return float(value)


def _beyond(m: MetricDelta, rule: dict[str, float]) -> bool:
    """Is a change in the bad direction outside the rule? Every given bound must be exceeded."""
    checks = []
    if "relative" in rule:
        checks.append(abs(m.relative or 0.0) > rule["relative"])
    if "absolute" in rule:
        checks.append(abs(m.delta or 0.0) > rule["absolute"])
    if "statistical" in rule and m.p_value is not None:
        checks.append(m.p_value < rule["statistical"])
    return bool(checks) and all(checks)


def row_keys(a: pandas.DataFrame, info_a: dict[str, Any], b: pandas.DataFrame, info_b: dict[str, Any],
             tolerances: dict[str, Any] | None = None) -> list[str]:
    """The key columns both runs are aligned on."""
    extra = list((tolerances or {}).get("keys", []))
    return sorted(set(key_columns(a, info_a, extra)) | set(key_columns(b, info_b, extra)))


def compare_frames(a: pandas.DataFrame, info_a: dict[str, Any], b: pandas.DataFrame, info_b: dict[str, Any],
                   tolerances: dict[str, Any] | None = None, label_a: str = "A", label_b: str = "B",
                   spreads: dict[tuple, float] | None = None, keys: list[str] | None = None) -> Comparison:
    """Compare results ``b`` (current) with ``a`` (baseline).

    ``spreads`` maps ``(row key, metric)`` to a relative spread measured over several
    baseline runs (:mod:`.compare_trend`); it sets that metric's default tolerance.
    """
    keys = keys if keys is not None else row_keys(a, info_a, b, info_b, tolerances)
    rows_a, rows_b = aligned_rows(a, keys), aligned_rows(b, keys)
    metrics = [c for c in dict.fromkeys([*a.columns, *b.columns]) if is_metric_column(c, keys)]
    rows, only_a, only_b = [], [], []
    for key in sorted(set(rows_a) | set(rows_b), key=sort_key):
        described = {"testcase": key[0], "test": key[1],
                     **{k: v for k, v in zip(keys, key[2:-1]) if v is not None}}
        if key not in rows_b:
            only_a.append(described)
            continue
        if key not in rows_a:
            only_b.append(described)
            continue
        row = RowDelta(key[0], key[1], {k: v for k, v in zip(keys, key[2:-1]) if v is not None})
        for name in metrics:
            delta = _metric(name, rows_a[key].get(name), rows_b[key].get(name), tolerances,
                            (spreads or {}).get((key, name)))
            if delta is not None:
                row.metrics.append(delta)
        rows.append(row)
    return Comparison(label_a, label_b, rows, only_a, only_b)


def load_results(run_dir: Path) -> tuple[pandas.DataFrame, dict[str, Any]]:
    """A run folder's results table and run.json (RunDataError when missing)."""
    from pytest_collab.results.records import read_results
    from pytest_collab.results.rundir import RunDir

    run = RunDir(Path(run_dir))
    return read_results(run.root), run.read_run_json()


def compare_runs(run_a: Path, run_b: Path, tolerances: dict[str, Any] | None = None) -> Comparison:
    """Compare two run folders (``run_b`` against ``run_a``)."""
    a, info_a = load_results(run_a)
    b, info_b = load_results(run_b)
    return compare_frames(a, info_a, b, info_b, tolerances,
                          label_a=str(info_a.get("run_id", Path(run_a).name)),
                          label_b=str(info_b.get("run_id", Path(run_b).name)))
