"""Energy from the power a run recorded: joules per program, per test, per inference.

Every power source the wrapper reads is **board-level** (a RAPL package, a GPU, a board's
input rail, a wall meter): all processes of the device are in it. So every number here
carries ``scope="board"``: the energy the device used while something ran, never what
one process used.

Per device one *basis* is chosen, the most complete measurement that does not count a
joule twice (:func:`basis`): an external meter, else the board's input rail (Jetson
``VDD_IN``, RPi 5 PMIC), else RAPL packages + DRAM (or ``psys``) + NVML GPUs, else the
hwmon meters. For each basis metric that has an energy counter (``energy_j.X`` next to
``power_w.X``) the energy is the counter's difference (exact); otherwise the power
samples are integrated with the trapezoidal rule. Windows are clipped to what was
sampled, and ``covered_s`` says how much of a window had data.

Inference boundaries come from results rows (``collab.record(t_start=..., t_end=...)``,
device clock, epoch seconds): :func:`inference_energy` gives J per inference per row and
:func:`joules_per_inference` the median per configuration (split: ``(split, encoding)``;
federated: ``by=("round", "client"), device_column="client"``), the objective a
partitioner can minimise. See docs/energy.md.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy
    import pandas

SCOPE = "board"
POWER, ENERGY = "power_w.", "energy_j."
#: a board's own input rail: the whole board, components included
BOARD_INPUTS = ("power_w.VDD_IN", "power_w.POM_5V_IN", "power_w.pmic")
#: counts of inferences a results row may carry, first found wins
COUNT_COLUMNS = ("inferences", "queries")
#: a results row's latency per inference, first found wins (else the marked window / count)
LATENCY_COLUMNS = ("latency_ms", "p50_ms")


@dataclass(frozen=True)
class Energy:
    """Joules a device used over a window, how they were obtained, and how much was seen."""

    joules: float
    method: str              # "counter", "trapezoid", "counter+trapezoid" or "none"
    basis: tuple[str, ...]   # the power metrics summed
    covered_s: float         # seconds of the window with data for every basis metric
    scope: str = SCOPE

    @property
    def mean_w(self) -> float:
        """Mean board power over the part of the window with data (NaN without any)."""
        return self.joules / self.covered_s if self.covered_s > 0 else math.nan


# -- the arithmetic ---------------------------------------------------------------------
def _window(t: Any, values: Any, t0: float | None, t1: float | None) -> Any:
    """``(ts, vs, lo, hi, i, j)``: the samples as arrays, the window clipped to the sampled
    span, and the index range of the samples around it; None when the window is empty."""
    import numpy as np

    ts, vs = np.asarray(t, dtype=float), np.asarray(values, dtype=float)
    if len(ts) < 2:
        return None
    lo = ts[0] if t0 is None else max(t0, ts[0])
    hi = ts[-1] if t1 is None else min(t1, ts[-1])
    if hi <= lo:
        return None
    # Only the samples around the window: a long run stays cheap per window.
    i, j = max(0, int(np.searchsorted(ts, lo, "right")) - 1), int(np.searchsorted(ts, hi, "left")) + 1
    return ts, vs, lo, hi, i, j


def trapezoid(t: Any, watts: Any, t0: float | None = None,
              t1: float | None = None) -> float:
    """Joules under the piecewise-linear power curve ``(t, watts)`` between ``t0`` and ``t1``.

    Samples must be sorted by time; the window is clipped to the sampled span and its
    ends are interpolated, so a window between two samples still gets its share.
    """
    import numpy as np

    window = _window(t, watts, t0, t1)
    if window is None:
        return 0.0
    ts, ps, lo, hi, i, j = window
    ts, ps = ts[i:j], ps[i:j]
    grid = np.concatenate(([lo], ts[(ts > lo) & (ts < hi)], [hi]))
    values = np.interp(grid, ts, ps)
    return float(np.sum((values[1:] + values[:-1]) * np.diff(grid)) / 2.0)


def counter_delta(t: Any, joules: Any, t0: float | None = None,
                  t1: float | None = None) -> float:
    """Joules an (already unwrapped, cumulative) energy counter advanced over ``[t0, t1]``."""
    import numpy as np

    window = _window(t, joules, t0, t1)
    if window is None:
        return 0.0
    ts, es, lo, hi, i, j = window
    start = np.interp(lo, ts[i:i + 2], es[i:i + 2])
    end = np.interp(hi, ts[j - 2:j], es[j - 2:j])
    return float(end - start)


def _span(ts: numpy.ndarray, t0: float | None, t1: float | None) -> float:
    if len(ts) < 2:
        return 0.0
    lo = ts[0] if t0 is None else max(t0, ts[0])
    hi = ts[-1] if t1 is None else min(t1, ts[-1])
    return float(max(0.0, hi - lo))


# -- which metrics measure a device -----------------------------------------------------
def basis(names: Iterable[str]) -> tuple[str, ...]:
    """The power metrics that together measure a device once (see the module docstring)."""
    power = sorted({n for n in names if n.startswith(POWER)})
    if "power_w.meter" in power:
        return ("power_w.meter",)
    for rail in BOARD_INPUTS:
        if rail in power:
            return (rail,)
    rapl = [n for n in power if n.startswith("power_w.rapl.")]
    if "power_w.rapl.psys" in rapl:
        cpu = ["power_w.rapl.psys"]
    else:  # packages and their DRAM; core and uncore are inside the package
        cpu = [n for n in rapl if n.count(".") == 2 or n.endswith(".dram")]
    gpus = [n for n in power if n.startswith("power_w.nvml.")]
    if cpu or gpus:
        return tuple(cpu + gpus)
    return tuple(power)


def seconds(stamps: Any) -> numpy.ndarray:
    """Epoch seconds (float) of a timestamp column (tz-aware or naive UTC) or of numbers."""
    import numpy as np
    import pandas as pd

    series = pd.Series(stamps)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if series.dt.tz is None:
            series = series.dt.tz_localize("UTC")
        return ((series - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)
    return np.asarray(series, dtype=float)


def power_rows(metrics: pandas.DataFrame) -> pandas.DataFrame:
    """The power and energy rows of a metrics table, with ``t`` in epoch seconds."""
    names = metrics["metric"].astype(str)
    rows = metrics[names.str.startswith(POWER) | names.str.startswith(ENERGY)]
    out = rows[["test", "device", "program", "pid", "metric", "value"]].copy()
    for col in ("test", "device", "program", "metric"):
        out[col] = out[col].astype(str)
    out["t"] = seconds(rows["timestamp"])
    return out.sort_values("t", kind="stable")


def sample_rows(device: str, program: str, pid: int,
                samples: Iterable[tuple[float, dict[str, float]]]) -> pandas.DataFrame:
    """:func:`power_rows` of samples a test holds in memory (``Program.power_samples()``),
    so a test can weigh energy before the run's tables exist."""
    import pandas as pd

    out = [(device, program, pid, metric, float(value), float(t))
           for t, values in samples for metric, value in values.items()]
    return pd.DataFrame(out, columns=["device", "program", "pid", "metric", "value", "t"]).assign(test="")


class DeviceSeries:
    """One device's power and energy samples, split per metric (and program) once, so
    that each window is a few binary searches, not a scan of the table."""

    def __init__(self, rows: pandas.DataFrame) -> None:
        import numpy as np

        #: metric -> [((program, pid), t, values)], each sorted by time
        self.programs: dict[str, list[tuple[tuple, Any, Any]]] = {}
        for (metric, program, pid), g in rows.groupby(["metric", "program", "pid"], sort=True, dropna=False):
            order = np.argsort(g["t"].to_numpy(), kind="stable")
            self.programs.setdefault(str(metric), []).append(
                ((program, pid), g["t"].to_numpy()[order], g["value"].to_numpy(dtype=float)[order]))
        self.basis = basis(self.programs)
        self._merged: dict[str, tuple[Any, Any]] = {}

    def merged(self, metric: str) -> tuple[Any, Any]:
        """Every program's samples of a power metric on one time line (same board)."""
        import numpy as np

        if metric not in self._merged:
            parts = self.programs.get(metric, [])
            t = np.concatenate([p[1] for p in parts]) if parts else np.array([])
            v = np.concatenate([p[2] for p in parts]) if parts else np.array([])
            t, first = np.unique(t, return_index=True)
            self._merged[metric] = (t, v[first])
        return self._merged[metric]


def by_device(rows: pandas.DataFrame) -> dict[str, DeviceSeries]:
    """:func:`power_rows` as one :class:`DeviceSeries` per device."""
    return {str(device): DeviceSeries(group) for device, group in rows.groupby("device", sort=True)}


# -- energy over windows ----------------------------------------------------------------
def device_energy(rows: pandas.DataFrame | DeviceSeries, device: str, t0: float | None = None,
                  t1: float | None = None) -> Energy:
    """Joules ``device`` used over ``[t0, t1]`` (epoch seconds), from :func:`power_rows`
    (or that device's :class:`DeviceSeries`, faster for many windows)."""
    data = rows if isinstance(rows, DeviceSeries) else DeviceSeries(rows[rows["device"] == device])
    chosen = data.basis
    if not chosen:
        return Energy(math.nan, "none", (), 0.0)
    series: list[tuple[Any, Any, str]] = []  # (t, values, method) per basis metric
    for metric in chosen:
        counters = [p for p in data.programs.get(ENERGY + metric[len(POWER):], []) if len(p[1]) >= 2]
        if counters:
            # Counters restart at 0 in every wrapper: use one program's series, the one
            # that sees most of the window.
            best = max(counters, key=lambda p: (_span(p[1], t0, t1), str(p[0])))
            series.append((best[1], best[2], "counter"))
        else:
            t, v = data.merged(metric)
            series.append((t, v, "trapezoid"))
    methods = "+".join(sorted({m for _t, _v, m in series}))
    # Every basis metric over the same stretch: the part of the window all of them saw.
    lo = max([float(t[0]) for t, _v, _m in series if len(t)] + ([t0] if t0 is not None else []))
    hi = min([float(t[-1]) for t, _v, _m in series if len(t)] + ([t1] if t1 is not None else []))
    if any(len(t) < 2 for t, _v, _m in series) or hi <= lo:
        return Energy(0.0, methods, chosen, 0.0)
    total = sum(counter_delta(t, v, lo, hi) if m == "counter" else trapezoid(t, v, lo, hi)
                for t, v, m in series)
    return Energy(total, methods, chosen, hi - lo)


def window_energy(device: str, samples: Iterable[tuple[float, dict[str, float]]], t0: float,
                  t1: float) -> Energy:
    """:func:`device_energy` over ``[t0, t1]`` of one program's in-memory samples
    (``Program.power_samples()``): a test's own window, before the run's tables exist."""
    return device_energy(sample_rows(device, "", 0, samples), device, t0, t1)


def _row(keys: dict[str, Any], e: Energy, t0: float, t1: float) -> dict[str, Any]:
    seconds_ = max(0.0, t1 - t0)
    return {**keys, "scope": e.scope, "basis": ",".join(e.basis), "method": e.method,
            "joules": e.joules, "seconds": seconds_, "covered_s": e.covered_s,
            "mean_w": e.mean_w}


def sample_windows(metrics: pandas.DataFrame, keys: list[str]) -> pandas.DataFrame:
    """Sample spans (first to last timestamp, any metric) per ``keys``."""
    frame = metrics[keys].astype(str)
    frame["t"] = seconds(metrics["timestamp"])
    return frame.groupby(keys, sort=True)["t"].agg(["min", "max"]).reset_index()


def energy_per_program(metrics: pandas.DataFrame) -> pandas.DataFrame:
    """Per test, device and program: the board's joules while the program was sampled."""
    import pandas as pd

    rows = by_device(power_rows(metrics))
    out = [_row({"test": w["test"], "device": w["device"], "program": w["program"]},
                device_energy(rows[w["device"]], w["device"], w["min"], w["max"]), w["min"], w["max"])
           for _, w in sample_windows(metrics, ["test", "device", "program"]).iterrows()
           if w["device"] in rows]
    return pd.DataFrame(out)


def energy_per_test(metrics: pandas.DataFrame) -> pandas.DataFrame:
    """Per test and device: the board's joules from the test's first to last sample there."""
    import pandas as pd

    rows = by_device(power_rows(metrics))
    out = [_row({"test": w["test"], "device": w["device"]},
                device_energy(rows[w["device"]], w["device"], w["min"], w["max"]), w["min"], w["max"])
           for _, w in sample_windows(metrics, ["test", "device"]).iterrows()
           if w["device"] in rows]
    return pd.DataFrame(out)


def _first(row: Any, columns: Sequence[str]) -> float | None:
    for name in columns:
        value = row.get(name)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return float(value)
    return None


def inference_energy(results: pandas.DataFrame, metrics: pandas.DataFrame,
                     by: Sequence[str] = ("split", "encoding"),
                     device_column: str = "device") -> pandas.DataFrame:
    """J per inference per results row (``row``: its index in ``results``) and device.

    A row's window is ``[t_start, t_end]`` when it has them (``window="marked"``), else
    its test's sampled span on the device (``window="test"``, which includes start-up).
    Its devices: the one named in ``device_column`` (none when that one recorded no
    power), else every device of its test. Inferences: ``inferences`` or ``queries``, else 1.
    """
    import pandas as pd

    powered = by_device(power_rows(metrics))
    spans = sample_windows(metrics, ["test", "device"])
    out = []
    for index, r in results.iterrows():
        test = str(r.get("test"))
        named = str(r.get(device_column)) if r.get(device_column) is not None else ""
        mine = spans[spans["test"] == test]
        if named:  # a row about one device never borrows another's power
            devices = [named] if named in powered else []
        else:
            devices = [d for d in mine["device"] if d in powered]
        count = _first(r, COUNT_COLUMNS) or 1.0
        marked = r.get("t_start") is not None and r.get("t_end") is not None and \
            not pd.isna(r.get("t_start")) and not pd.isna(r.get("t_end"))
        for device in devices:
            if marked:
                t0, t1 = float(r["t_start"]), float(r["t_end"])
            else:
                span = mine[mine["device"] == device]
                if span.empty:
                    continue
                t0, t1 = float(span["min"].iloc[0]), float(span["max"].iloc[0])
            e = device_energy(powered[device], device, t0, t1)
            latency = _first(r, LATENCY_COLUMNS)
            if latency is None:
                latency = (t1 - t0) * 1000.0 / count if marked else math.nan
            keys = {"test": test, "row": index, **{k: r.get(k) for k in by}, "device": device,
                    "window": "marked" if marked else "test"}
            row = _row(keys, e, t0, t1)
            row.update(inferences=count, j_per_inference=e.joules / count, latency_ms=latency)
            out.append(row)
    return pd.DataFrame(out)


def joules_per_inference(results: pandas.DataFrame, metrics: pandas.DataFrame,
                         by: Sequence[str] = ("split", "encoding"), device: str | None = None,
                         device_column: str = "device") -> dict[tuple, float]:
    """Median J per inference per configuration ``by`` (the partitioner's objective).

    ``device`` None sums the devices of each row (the system's energy, e.g. edge and
    server of a split); a name keeps that device only.
    """
    table = inference_energy(results, metrics, by, device_column)
    if table.empty:
        return {}
    if device is not None:
        table = table[table["device"] == device]
    import statistics

    per_row: dict[tuple, float] = {}  # (key, results row) -> J summed over devices
    for r in table.to_dict("records"):
        key = tuple(r[k] for k in by)
        slot = (key, r["row"])
        per_row[slot] = per_row.get(slot, 0.0) + r["j_per_inference"]
    per_key: dict[tuple, list[float]] = {}
    for (key, *_rest), joules in per_row.items():
        per_key.setdefault(key, []).append(joules)
    return {key: statistics.median(values) for key, values in per_key.items()}


def energy_objective(run_dir: Path | str, by: Sequence[str] = ("split", "encoding"),
                     device: str | None = None) -> dict[tuple, float]:
    """:func:`joules_per_inference` of a finished run folder."""
    from pytest_collab.results.metrics import read_metrics
    from pytest_collab.results.records import read_results

    return joules_per_inference(read_results(Path(run_dir)), read_metrics(Path(run_dir)), by, device)


def power_timeline(rows: pandas.DataFrame | DeviceSeries, device: str) -> pandas.DataFrame:
    """``t`` (epoch s) and ``watts``: the device's basis metrics summed on their joint times."""
    import numpy as np
    import pandas as pd

    data = rows if isinstance(rows, DeviceSeries) else DeviceSeries(rows[rows["device"] == device])
    series = [data.merged(m) for m in data.basis]
    series = [(t, v) for t, v in series if len(t)]
    if not series:
        return pd.DataFrame({"t": [], "watts": []})
    grid = np.unique(np.concatenate([t for t, _v in series]))
    lo, hi = max(t[0] for t, _v in series), min(t[-1] for t, _v in series)
    grid = grid[(grid >= lo) & (grid <= hi)]
    watts = sum(np.interp(grid, t, v) for t, v in series)
    return pd.DataFrame({"t": grid, "watts": watts})


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indexes of the points no other point beats on both (lower is better), by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front: list[int] = []
    best = math.inf
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front
