"""Streaming MetricsWriter against one ``pyarrow.parquet.write_table`` of the same rows.

Run: ``.venv/bin/python benchmarks/bench_parquet.py [--rows 1000000] [--repeat 5]``.
Prints CPU and wall seconds (medians of interleaved repeats, with min-max) and ratios
measured side by side: of the medians, and the median of each round's own ratio (each
scenario against the write_table run next to it, which a neighbour's burst hits alike).
Target (issues 2 and 21): ``add_samples/64`` and ``add_rows`` within 2x of the single
write_table, which needs every row in memory at once, as the writer does not (it holds
one row group, 131072 rows by default). Last figures, 1e6 rows, 9 interleaved repeats,
the median of 4 runs' per-round ratios, alternating with the code before issue 21's work
on a shared 2-core machine (each run's figure moves by +-0.15 there): add_samples/64
1.77x (runs 1.64-1.85; before: 2.10x, 2.01-2.23), add_rows 1.87x (1.61-1.97; before:
2.02x, 1.82-2.13).

Fairness: every scenario is timed the same way (CPU of this process, all threads, around
one call that opens, writes and closes its file), interleaved, after an untimed warm-up;
GC does not run inside the timed calls (checked). What differs is the work, on purpose:
write_table gets its Arrow table built untimed, while the writer converts Python objects
and also makes its file durable (fsync and atomic rename at close, about 2 ms here).

CPU time of this process is the headline: the machine may be shared, and a neighbour
stretches wall time far more than the CPU a job needs. Scenarios, all writing the same
rows with the same Parquet options (zstd, the writer's dictionary columns):
- ``write_table``: one Arrow table built once (not timed), written once;
- ``pyarrow_defaults``: the same with pyarrow's default options (reference only);
- ``build+write``: the non-streaming way from Python: all rows as lists, converted once;
- ``add_samples/64``: the plugin's path: each program's wrapper ``m`` objects handed
  over 64 at a time (what deploy.py's reader thread buffers), 12 metrics each;
- ``add_sample``: the same objects one call per ``m`` line;
- ``add_rows``: the same rows in 10k-row chunks of Python lists.
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

METRICS = {"cpu_user_s": "s", "cpu_system_s": "s", "cpu_percent": "%", "rss_bytes": "B",
           "threads": "", "procs": "", "read_bytes": "B", "write_bytes": "B",
           "ctx_voluntary": "", "ctx_involuntary": "", "net_rx_bytes": "B", "net_tx_bytes": "B"}
PROGRAMS = [("rpi-1", "client", 4101), ("jetson-1", "server", 5202), ("rpi-2", "client", 4303)]
RUN = "20260101-000000-abcdef"
BATCH = 64


def make_samples(rows: int) -> list[dict]:
    """Realistic wrapper samples: 3 programs at 10 Hz, 12 metrics each, as add_sample kwargs."""
    rng = random.Random(7)
    t0 = 1_700_000_000.0
    units = [dict(METRICS) for _ in PROGRAMS]  # each program has its own mapping
    samples = []
    for i in range(rows // len(METRICS)):
        device, program, pid = PROGRAMS[i % len(PROGRAMS)]
        samples.append(dict(run=RUN, test=f"testcases/x/test_x.py::test_x[{i // 20000}]",
                            device=device, program=program, pid=pid, t=t0 + i / 30,
                            values={k: rng.random() * 1e6 for k in METRICS},
                            units=units[i % len(PROGRAMS)]))
    return samples


def make_batches(samples: list[dict], size: int = BATCH) -> list[dict]:
    """The same samples as add_samples calls: per program and test, ``size`` ``m`` objects
    at a time, in the order a reader thread would complete them (untimed: the reader's
    cost is one list append per line)."""
    open_batches: dict[tuple, dict] = {}
    calls = []
    for s in samples:
        key = (s["test"], s["device"], s["program"], s["pid"])
        if key not in open_batches:
            open_batches[key] = dict(run=s["run"], test=s["test"], device=s["device"],
                                     program=s["program"], pid=s["pid"], samples=[], units=s["units"])
        batch = open_batches[key]
        batch["samples"].append({"k": "m", "t": s["t"], "pid": s["pid"], "v": s["values"]})
        if len(batch["samples"]) == size:
            calls.append(open_batches.pop(key))
    return calls + list(open_batches.values())


def to_columns(samples: list[dict]) -> dict[str, list]:
    cols: dict[str, list] = {k: [] for k in ("run", "test", "device", "program", "pid", "timestamp",
                                             "metric", "value", "unit")}
    for s in samples:
        for name, value in s["values"].items():
            for key in ("run", "test", "device", "program", "pid"):
                cols[key].append(s[key])
            cols["timestamp"].append(s["t"])
            cols["metric"].append(name)
            cols["value"].append(value)
            cols["unit"].append(s["units"][name])
    return cols


def timed(work: Callable[[], Any]) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of ``work()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.process_time() - cpu, time.perf_counter() - wall


def build_table(cols: dict[str, list], scratch: Path) -> Any:
    """The rows as one Arrow table with the writer's own schema."""
    from pytest_collab.results.metrics import MetricsWriter

    writer = MetricsWriter(scratch)
    table = writer._rows_table(cols)
    writer.close()
    return table


def scenarios(samples: list[dict], d: Path) -> dict[str, Callable[[Path], None]]:
    """name -> work(out): each writes every row of ``samples`` to ``out``."""
    import pyarrow.parquet as pq

    from pytest_collab.results.metrics import WRITE_OPTIONS, MetricsWriter

    cols = to_columns(samples)
    table = build_table(cols, d / "scratch.parquet")
    batches = make_batches(samples)
    n = len(cols["value"])
    chunks = [{k: v[i:i + 10_000] for k, v in cols.items()} for i in range(0, n, 10_000)]

    def add_samples(out: Path) -> None:
        with MetricsWriter(out) as writer:
            for call in batches:
                writer.add_samples(**call)

    def add_sample(out: Path) -> None:
        with MetricsWriter(out) as writer:
            add = writer.add_sample
            for s in samples:
                add(**s)

    def add_rows(out: Path) -> None:
        with MetricsWriter(out) as writer:
            for c in chunks:
                writer.add_rows(c)

    return {
        "write_table": lambda out: pq.write_table(table, str(out), **WRITE_OPTIONS),
        "pyarrow_defaults": lambda out: pq.write_table(table, str(out)),
        "build+write": lambda out: pq.write_table(build_table(cols, out.with_suffix(".s")),
                                                  str(out), **WRITE_OPTIONS),
        f"add_samples/{BATCH}": add_samples,
        "add_sample": add_sample,
        "add_rows": add_rows,
    }


def _plain_sorted(path: Path) -> Any:
    """A file's rows with dictionaries decoded, in one order (batches reorder rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    table = pa.table({n: c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c
                      for n, c in zip(table.column_names, table.columns)})
    return table.sort_by([("timestamp", "ascending"), ("metric", "ascending")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved repeats (default: 5)")
    args = parser.parse_args()
    samples = make_samples(args.rows)
    rows = len(samples) * len(METRICS)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        work = scenarios(samples, d)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in work}
        for name, fn in work.items():  # warm-up: imports and first-use costs, untimed
            fn(d / f"{name}.parquet")
        for _ in range(args.repeat):   # interleaved, so a noisy neighbour hits all alike
            for name, fn in work.items():
                times[name].append(timed(lambda: fn(d / f"{name}.parquet")))
        ref = _plain_sorted(d / "write_table.parquet")
        for name in work:
            assert _plain_sorted(d / f"{name}.parquet").equals(ref), f"{name}: rows differ"
        sizes = {name: (d / f"{name}.parquet").stat().st_size / 1e6 for name in work}
    print(f"rows: {rows:,} ({len(samples):,} samples x {len(METRICS)} metrics); median of "
          f"{args.repeat} interleaved repeats [min-max]; ratios against write_table")
    med = {name: (statistics.median(c for c, _ in v), statistics.median(w for _, w in v))
           for name, v in times.items()}
    base_cpu, base_wall = med["write_table"]
    for name, (cpu, wall) in med.items():
        cpus = [c for c, _ in times[name]]
        paired = statistics.median(c / b for (c, _), (b, _) in zip(times[name], times["write_table"]))
        print(f"{name:16s} cpu {cpu:6.3f} s [{min(cpus):.3f}-{max(cpus):.3f}] "
              f"({cpu / base_cpu:4.2f}x, per round {paired:4.2f}x)  wall {wall:6.3f} s ({wall / base_wall:4.2f}x)  "
              f"{rows / cpu / 1e6:5.2f} M rows/cpu-s  file {sizes[name]:.1f} MB")


if __name__ == "__main__":
    main()
