"""Results: what tests ``collab.record()``, from crash-safe journals to ``results.parquet``.

Records are rare and free-form (any keys, scalars or sample lists), so each process
appends them to a JSON Lines journal, flushed per line, and the controller turns all
journals into one table at the end: the union of the columns, sequences of numbers as
``list<double>``. Split from :mod:`pytest_collab.results.metrics`, which re-exports these names.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_collab.errors import RunDataError
from pytest_collab.results.durable import durable_replace, fsync_dir, sync_file
from pytest_collab.results.metrics import COMPRESSION, read_frame
from pytest_collab.results.metrics_columns import timestamp_type, to_timestamps
from pytest_collab.results.rundir import RunDir

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    import pyarrow

#: columns that lead every results table, in this order
RESULTS_LEAD = ("run", "test", "testcase", "record", "timestamp")
#: where a row came from, not what it measured or which measurement it is: comparisons
#: of two runs (another commit, another lab) must neither align on nor diff them
PROVENANCE = ("device", "arch", "image_digest", "git_sha", "source", "program")


class ResultsJournal:
    """Appends one JSON line per ``collab.record()``; each line is fsynced at once.

    A journal survives a crash of the run, even a power loss (every complete line is
    kept: records are rare, so an fsync each costs nothing that matters), and the
    ``results.parquet`` of a run is built from the journals of all processes at the end.
    The same class journals other line-shaped facts of a run (program rows, outcomes).
    """

    def __init__(self, path: Path, sync_every_s: float = 0.0) -> None:
        """``sync_every_s`` > 0: lines are still flushed at once (a killed process loses
        none), but fsynced at most that often and at close (a burst costs one fsync)."""
        self.path = Path(path)
        self.sync_every_s = sync_every_s
        self._lock = threading.Lock()
        self._fh: Any = None
        self._synced = 0.0

    def append(self, row: Mapping[str, Any], *, stamp: bool = True) -> None:
        """Write ``row``; adds ``timestamp`` (epoch seconds) when the row has none."""
        record = dict(row)
        if stamp:
            record.setdefault("timestamp", time.time())
        line = json.dumps(record, default=_json_default, allow_nan=True) + "\n"
        with self._lock:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
                fsync_dir(self.path.parent)
            self._fh.write(line)
            if self.sync_every_s <= 0 or time.monotonic() - self._synced >= self.sync_every_s:
                sync_file(self._fh)
                self._synced = time.monotonic()
            else:
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                sync_file(self._fh)
                self._fh.close()
                self._fh = None

    def __enter__(self) -> ResultsJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json_default(value: Any) -> Any:
    """numpy scalars/arrays, tuples, sets and datetimes as JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, Iterable)) and not isinstance(value, (str, bytes)):
        return list(value)
    return str(value)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """Rows of one journal; a torn last line (crash mid-write) is dropped."""
    rows: list[dict[str, Any]] = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise RunDataError(f"{path}:{number}: not a JSON object ({exc}); fix or delete "
                               "the line and run the merge again") from exc
    return rows


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _column(name: str, values: list[Any]) -> pyarrow.Array:
    """One results column: sequences → list<double>, else Arrow's inferred scalar type.

    A column Arrow can not type (numbers mixed with text, ...) is kept as JSON text
    rather than failing the whole run at its very end.
    """
    import pyarrow as pa

    try:
        if name == "timestamp":
            return to_timestamps(values)
        if any(_is_sequence(v) for v in values):
            wrapped = [v if v is None or _is_sequence(v) else [v] for v in values]
            return pa.array(wrapped, type=pa.list_(pa.float64()))
        try:
            return pa.array(values)
        except OverflowError:  # ints past int64 (Flower's 64-bit node ids): unsigned if they fit
            return pa.array(values, pa.uint64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        return pa.array([None if v is None else json.dumps(v) for v in values], pa.string())


def write_results_parquet(journals: list[Path], out: Path,
                          extra_rows: Iterable[Mapping[str, Any]] = ()) -> Path:
    """Union of every journal's rows (and ``extra_rows``) into ``out`` (atomic, durable);
    missing journals are skipped."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [row for j in journals if Path(j).is_file() for row in read_journal(Path(j))]
    rows += [dict(row) for row in extra_rows]
    if any("source" in row for row in rows):  # printed rows added: name where each came from
        for row in rows:
            row.setdefault("source", "record")
    order = {name: None for name in RESULTS_LEAD}
    for row in rows:
        order.update(dict.fromkeys(row))
    columns = {name: _column(name, [row.get(name) for row in rows]) for name in order}
    if not rows:
        columns = {name: pa.array([], type=_lead_type(name)) for name in RESULTS_LEAD}
    table = pa.table(columns)
    return _atomic_write(table, Path(out), lambda t, p: pq.write_table(t, p, compression=COMPRESSION))


def _lead_type(name: str) -> pyarrow.DataType:
    import pyarrow as pa

    return {"record": pa.int64(), "timestamp": timestamp_type()}.get(name, pa.string())


def _atomic_write(table: pyarrow.Table, out: Path, write: Any) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    write(table, str(tmp))
    return durable_replace(tmp, out)


def read_results(run_dir: Path) -> pandas.DataFrame:
    """``results.parquet`` of a run; list columns hold numpy arrays."""
    return read_frame(RunDir(run_dir).results, "results")

