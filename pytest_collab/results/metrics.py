"""The Arrow schemas and the streaming Parquet writers of a run.

Why streaming: a run can last hours and sample many programs at 10 Hz, so metrics are
buffered in columns and written as Parquet row groups while the run goes on, to
``<name>.tmp``; ``close()`` writes the footer and renames the file to its final name.
A crash therefore never leaves a half-written ``metrics.parquet`` (the wrapper's raw
JSONL logs keep what was measured). Results (``collab.record()``) live in
:mod:`pytest_collab.results.records`; their names are re-exported here.

pyarrow is imported inside functions: the plugin imports this module lazily, but the
schemas are built on first use so that even an eager import stays cheap.
"""
from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_collab.errors import CollabError, CollabWarning, RunDataError
from pytest_collab.results.durable import durable_replace
from pytest_collab.results.metrics_buffer import _SampleBuffer
from pytest_collab.results.metrics_columns import timestamp_type
from pytest_collab.results.metrics_rows import TEXT_COLUMNS, _RowBuffer
from pytest_collab.results.rundir import RunDir

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    import pyarrow

COMPRESSION = "zstd"
#: the ``program`` column's name in runs written before it was renamed (it held the
#: program's name, not the device kind ``Program.role`` means); read as ``program``
LEGACY_PROGRAM_COLUMN = "role"
#: Parquet dictionary pages only where values repeat: trying them on random doubles
#: hashes a whole row group before giving up (measured: 2x slower at 131k-row groups)
WRITE_OPTIONS = {"compression": COMPRESSION, "use_dictionary": [*TEXT_COLUMNS, "pid"]}


def metrics_schema() -> pyarrow.Schema:
    """The long-format schema of ``metrics.parquet`` (see docs/architecture.md)."""
    import pyarrow as pa

    text = pa.dictionary(pa.int32(), pa.string())
    return pa.schema([
        ("run", text), ("test", text), ("device", text), ("program", text),
        ("pid", pa.int64()), ("timestamp", timestamp_type()),
        ("metric", text), ("value", pa.float64()), ("unit", text),
    ])


class MetricsWriter:
    """Streams metric rows to ``path`` as Parquet row groups; thread-safe ``add_*``.

    Device reader threads hand over wrapper ``m`` objects, one per :meth:`add_sample` or
    a buffered batch per :meth:`add_samples` (cheaper: one lock and call per batch); the
    hot path is a few dict look-ups and list appends per sample (see _SampleBuffer).

    Memory is bounded by ``row_group_rows``: once that many rows are buffered they are
    written as one row group. A buffered row costs about 10 bytes for batched wrapper
    samples (its value unboxed, per-sample fields once per sample; some 32 when numbers
    arrive one line at a time or as text) and 48 for bulk rows, plus the
    Arrow table of one row group (about 48 bytes a row) while it is written: some 8 MB
    at the default. Larger row groups measured no faster to write (131k to 1M rows).
    """

    def __init__(self, path: Path, *, row_group_rows: int = 131072) -> None:
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.tmp_path = self.path.with_name(self.path.name + ".tmp")
        self.row_group_rows = max(1, int(row_group_rows))
        self.schema = metrics_schema()
        self.rows_written = 0
        self.skipped_samples = 0              # malformed m objects add_samples left out
        self._lock = threading.Lock()        # guards the buffers
        self._write_lock = threading.Lock()  # serialises the ParquetWriter
        self._buf = _SampleBuffer()
        self._rows = _RowBuffer()             # add_rows' columns
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(str(self.tmp_path), self.schema, **WRITE_OPTIONS)

    # -- adding rows -------------------------------------------------------------------
    def add_sample(self, *, run: str, test: str, device: str, program: str, pid: int | None,
                   t: float, values: Mapping[str, float], units: Mapping[str, str]) -> None:
        """One wrapper sample (``m`` line): ``len(values)`` rows sharing run..timestamp."""
        if values:
            self._add(units, _SampleBuffer.add_one, (run, test, device, program, pid), t, values)

    def add_samples(self, *, run: str, test: str, device: str, program: str, pid: int | None,
                    samples: Iterable[Mapping[str, Any]], units: Mapping[str, str]) -> None:
        """Many wrapper ``m`` objects of one program, as parsed: ``{"t", "v"[, "pid"]}``.

        The batched form of :meth:`add_sample`: one lock and one call for what a device
        reader has buffered, so per-sample cost is the buffer's append loop alone. An
        object's own ``pid`` (when truthy) overrides ``pid``. Numbers are read during the
        call (the objects are not kept); objects without ``t`` or a ``v`` mapping are
        counted in ``skipped_samples``, not raised.
        """
        self._add(units, _SampleBuffer.add, (run, test, device, program, pid), samples)

    def _add(self, units: Mapping[str, str], fill: Callable[..., int | None], *args: Any) -> None:
        """``fill(buffer, *args)`` under the lock once ``units`` agree with the buffer's."""
        with self._lock:
            self._check_open()
            buf = self._buf
            conflict = not buf.merge_units(units)
            if not conflict:
                self.skipped_samples += fill(buf, *args) or 0
            full = buf.rows + self._rows.rows >= self.row_group_rows
        if conflict or full:
            self.flush()  # a metric changed its unit: its earlier rows go out first
        if conflict:
            self._add(units, fill, *args)

    def add_rows(self, columns: Mapping[str, Sequence[Any]]) -> None:
        """Bulk rows, one list (or Arrow array) per schema column; timestamps as epoch s."""
        self._check_columns(columns)
        with self._lock:
            self._check_open()
            self._rows.add(columns, self.schema)
            full = self._buf.rows + self._rows.rows >= self.row_group_rows
        if full:
            self.flush()

    def _check_columns(self, columns: Mapping[str, Sequence[Any]]) -> None:
        names = set(self.schema.names)
        if set(columns) != names:
            raise CollabError(
                f"MetricsWriter({self.path}).add_rows: columns must be exactly "
                f"{self.schema.names}; missing {sorted(names - set(columns))}, "
                f"unknown {sorted(set(columns) - names)}")
        lengths = {name: len(col) for name, col in columns.items()}
        if len(set(lengths.values())) > 1:
            raise CollabError(f"MetricsWriter({self.path}).add_rows: every column needs one "
                              f"value per row; lengths differ: {lengths}")

    def _rows_table(self, columns: Mapping[str, Sequence[Any]]) -> pyarrow.Table:
        """``columns`` as one table of this writer's schema (what add_rows would write)."""
        self._check_columns(columns)
        rows = _RowBuffer()
        rows.add(columns, self.schema)
        return rows.table(self.schema)

    # -- writing -----------------------------------------------------------------------
    def flush(self) -> None:
        """Write every buffered row as one row group (no-op when nothing is buffered)."""
        import pyarrow as pa

        with self._lock:
            samples, bulk = self._buf, self._rows
            self._buf, self._rows = _SampleBuffer(), _RowBuffer()
            if self._closed or not samples.rows + bulk.rows:
                return
        tables = [b.table(self.schema) for b in (bulk, samples) if b.rows]
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        table = table.unify_dictionaries()  # chunks stay: the writer takes them as they are
        rows = len(table)
        group = rows if rows < 2 * self.row_group_rows else self.row_group_rows
        with self._write_lock:
            self._writer.write_table(table, row_group_size=group)
            self.rows_written += rows

    def close(self) -> Path:
        """Flush, write the footer and rename ``<path>.tmp`` to ``path`` atomically."""
        if self._closed:
            return self.path
        self.flush()
        with self._lock, self._write_lock:
            self._closed = True
            self._writer.close()
            durable_replace(self.tmp_path, self.path)
        return self.path

    def _check_open(self) -> None:
        if self._closed:
            raise CollabError(f"MetricsWriter({self.path}) is closed; open a new writer")

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def upgrade_metrics(table: pyarrow.Table) -> pyarrow.Table:
    """A metrics table as this version names its columns: a run written before the rename
    (``role``, no ``program``) reads as if it had ``program``. Every reader of metrics
    files goes through here (:func:`read_metrics`, :func:`merge_parquet`, the exports)."""
    names = table.column_names
    if LEGACY_PROGRAM_COLUMN in names and "program" not in names:
        return table.rename_columns(["program" if n == LEGACY_PROGRAM_COLUMN else n for n in names])
    return table


def _conform(table: pyarrow.Table, schema: pyarrow.Schema) -> pyarrow.Table:
    """Reorder/cast ``table`` to ``schema``; columns it lacks become nulls."""
    import pyarrow as pa

    table = upgrade_metrics(table)
    arrays = [table.column(f.name).cast(f.type) if f.name in table.column_names
              else pa.nulls(len(table), f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def merge_parquet(parts: list[Path], out: Path, schema: pyarrow.Schema | None = None) -> Path:
    """Merge xdist workers' part files row group by row group into ``out`` (atomic).

    Missing or empty parts are skipped; an unreadable part is skipped with a warning so
    one crashed worker does not lose everyone's data. ``schema`` None = the union of the
    parts' schemas (metrics parts all share :func:`metrics_schema`).
    """
    import pyarrow.parquet as pq

    files = []
    for part in map(Path, parts):
        if not part.is_file() or part.stat().st_size == 0:
            continue
        try:
            files.append(pq.ParquetFile(str(part)))
        except Exception as exc:  # noqa: BLE001  (pyarrow raises several types)
            warnings.warn(CollabWarning(f"{part}: unreadable Parquet part skipped ({exc}); "
                                        "its worker probably crashed"), stacklevel=2)
    if schema is None:
        import pyarrow as pa

        schemas = [f.schema_arrow for f in files]
        schema = pa.unify_schemas(schemas) if schemas else metrics_schema()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    metrics_like = set(WRITE_OPTIONS["use_dictionary"]) <= set(schema.names)
    options = WRITE_OPTIONS if metrics_like else {"compression": COMPRESSION}
    with pq.ParquetWriter(str(tmp), schema, **options) as writer:
        for pf in files:
            for i in range(pf.num_row_groups):
                writer.write_table(_conform(pf.read_row_group(i), schema))
    return durable_replace(tmp, out)


def copy_metrics(src: Path, dest: Path) -> Path:
    """``src`` copied to ``dest`` byte for byte; a run written before the ``program`` rename
    is rewritten through :func:`upgrade_metrics` instead, so every export names it the same."""
    import shutil

    import pyarrow.parquet as pq

    if LEGACY_PROGRAM_COLUMN in pq.read_schema(str(src)).names:
        return merge_parquet([src], dest, metrics_schema())
    return Path(shutil.copy2(src, dest))


def read_frame(path: Path, what: str) -> pandas.DataFrame:
    """A run's Parquet table as a DataFrame; RunDataError naming the file and the fix."""
    return read_table(path, what).to_pandas()


def read_table(path: Path, what: str) -> pyarrow.Table:
    import pyarrow.parquet as pq

    if not path.parent.is_dir():
        raise RunDataError(f"{path.parent}: run folder not found; pass an existing run "
                           "folder, a run id under reports/, or 'latest'")
    if not path.is_file():
        hint = " (the run did not finish: only a .tmp exists)" if \
            path.with_name(path.name + ".tmp").exists() else ""
        raise RunDataError(f"{path}: {what} file missing{hint}; re-run the tests to record it")
    try:
        return pq.read_table(str(path))
    except Exception as exc:  # noqa: BLE001
        raise RunDataError(f"{path}: unreadable Parquet ({exc}); delete it and re-run") from exc


def read_metrics(run_dir: Path) -> pandas.DataFrame:
    """``metrics.parquet`` of a run as a DataFrame (strings as categoricals); a run
    written before the ``role`` -> ``program`` rename reads the same (:func:`upgrade_metrics`)."""
    return upgrade_metrics(read_table(RunDir(run_dir).metrics, "metrics")).to_pandas()
