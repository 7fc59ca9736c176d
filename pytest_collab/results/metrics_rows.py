"""Columnar buffering of :meth:`MetricsWriter.add_rows`' bulk rows until a flush.

Kept apart from :mod:`pytest_collab.results.metrics_buffer` (wrapper samples) because bulk
rows arrive already long-format: the job here is to convert each call's Python lists
once, cheaply, and to hand the flush one table. Text columns and pids are encoded into
codes shared by every call of a flush: one dictionary per column, so no call builds its
own and the flush has none to unify. A buffered row costs about 48 bytes (six int32
codes, pid, timestamp and value), bounded by the writer's ``row_group_rows``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

from pytest_collab.results.metrics_columns import _codes, _text, float64s, ints, to_timestamps

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow

#: text columns: stored dictionary-encoded (few distinct values, millions of rows)
TEXT_COLUMNS = ("run", "test", "device", "program", "metric", "unit")
#: columns encoded against the buffer's shared codes, and the Python type of their values
_CODED = {**dict.fromkeys(TEXT_COLUMNS, str), "pid": int}


class _RowBuffer:
    """Bulk rows not yet written: per column, numpy codes (text, pid) or Arrow arrays.

    Not thread-safe: the writer calls it under its lock (the shared codes grow per call).
    """

    __slots__ = ("codes", "parts", "rows")

    def __init__(self) -> None:
        self.codes: dict[str, dict[Any, int]] = {name: {} for name in _CODED}
        self.parts: dict[str, list[Any]] = {}
        self.rows = 0

    def add(self, columns: Mapping[str, Sequence[Any]], schema: pyarrow.Schema) -> None:
        """Convert one call's columns (names and lengths checked by the caller); nothing
        is kept unless every column converts (a bad value raises, the buffer stays)."""
        sizes = {name: len(code) for name, code in self.codes.items()}
        try:
            converted = {field.name: self._convert(field, columns[field.name]) for field in schema}
        except BaseException:
            for name, code in self.codes.items():
                _truncate(code, sizes[name])
            raise
        for name, part in converted.items():
            self.parts.setdefault(name, []).append(part)
        self.rows += len(columns[schema.names[0]])

    def _convert(self, field: pyarrow.Field, values: Sequence[Any]) -> Any:
        name = field.name
        kind = _CODED.get(name)
        if kind is not None and type(values) is list:
            code = self.codes[name]
            before = len(code)
            try:
                found = _codes(values, code)
            except TypeError:  # unhashable: the general encoders decide
                found = None
            if found is not None and all(type(v) is kind for v in islice(code, before, None)):
                return found
            _truncate(code, before)
        if kind is str:
            return _text(values)
        if kind is int:
            return ints(values)
        if name == "timestamp":
            return to_timestamps(values)
        fast = float64s(values) if name == "value" else None
        import pyarrow as pa

        return pa.array(values if fast is None else fast, type=field.type)

    def table(self, schema: pyarrow.Schema) -> pyarrow.Table:
        """Every buffered row, a chunk per call; a text column's coded chunks share one
        dictionary (concatenating them costs more than the Parquet writer saves)."""
        import pyarrow as pa

        return pa.Table.from_arrays([self._column(field) for field in schema], schema=schema)

    def _column(self, field: pyarrow.Field) -> pyarrow.ChunkedArray:
        import numpy as np
        import pyarrow as pa

        parts = self.parts[field.name]
        code = self.codes.get(field.name)
        if code is not None:
            if _CODED[field.name] is str:  # codes index the dictionary by construction: no check
                dictionary = pa.array(list(code), pa.string())
                decode = lambda c: pa.DictionaryArray.from_arrays(pa.array(c), dictionary, safe=False)  # noqa: E731
            else:
                distinct = np.asarray(list(code), np.int64)
                decode = lambda c: pa.array(distinct[c])  # noqa: E731
            parts = [decode(p) if isinstance(p, np.ndarray) else p for p in parts]
        return pa.chunked_array(parts, field.type)  # the flush unifies fallback chunks' dictionaries


def _truncate(code: dict[Any, int], size: int) -> None:
    """Forget the codes given after the first ``size`` (codes stay dense: 0..len-1)."""
    for new in list(islice(code, size, None)):
        del code[new]
