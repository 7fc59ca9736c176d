"""Python lists to Arrow columns, as cheaply as Python allows: the conversions both of the
metrics writer's buffers share (wrapper samples, :mod:`~pytest_collab.results.metrics_buffer`;
bulk rows, :mod:`~pytest_collab.results.metrics_rows`) and the results table's timestamps.

Long-format rows repeat themselves (a sample's run, test, device, program, pid and
timestamp on each of its metric rows; the metric names cycling), so these look for the
repetition with C-speed list comparisons and convert each distinct item once.
"""
from __future__ import annotations

import struct
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow


def timestamp_type() -> pyarrow.DataType:
    """Every timestamp of a run: microseconds, UTC."""
    import pyarrow as pa

    return pa.timestamp("us", tz="UTC")


def float64s(values: Any) -> Any:
    """A list of plain Python numbers as a float64 numpy array, unboxed by one
    ``struct.pack`` (about twice as fast as numpy's ``fromiter`` or ``pa.array`` of the
    list); None when ``values`` is not a list or holds anything else (None, text)."""
    import numpy as np

    if type(values) is not list:
        return None
    try:
        return np.frombuffer(struct.pack(f"{len(values)}d", *values), np.float64)
    except (struct.error, TypeError, OverflowError):
        return None


def _seconds_to_timestamps(seconds: Any) -> pyarrow.Array:
    """Epoch seconds (a list of floats, None allowed, or a numpy array) to timestamp[us, UTC]."""
    import numpy as np
    import pyarrow as pa

    n, run = len(seconds), _run_length(seconds)
    if run > 1:  # long-format rows: a sample's metrics share its timestamp
        seconds = seconds[::run]
    secs = seconds.astype(np.float64, copy=False) if isinstance(seconds, np.ndarray) else float64s(seconds)
    if secs is None:
        try:  # numbers: straight into numpy
            secs = np.fromiter(seconds, np.float64, len(seconds))
        except (TypeError, ValueError):  # None, Arrow or numpy input
            secs = pa.array(seconds, type=pa.float64()).to_numpy(zero_copy_only=False)
    micros = np.round(secs * 1e6)
    mask = np.isnan(micros)
    if not mask.any():  # a view: pa.array(..., type=) of a timestamp type costs 3x more
        return pa.array(np.repeat(micros.astype("int64"), run)[:n]).view(timestamp_type())
    return pa.array(np.repeat(np.where(mask, 0, micros).astype("int64"), run)[:n], type=timestamp_type(),
                    mask=np.repeat(mask, run)[:n])


def _run_length(values: Any) -> int:
    """k > 1 when the list ``values`` is its items each repeated k times in a row (the last
    item maybe fewer), else 1. The run is found by identity (a sample's rows hold its one
    timestamp object), then every stride ``values[j::k]`` is compared with the heads at
    C speed: a few passes of pointer comparisons instead of unboxing every float."""
    if type(values) is not list or len(values) < 2 * _MAX_PERIOD:
        return 1
    first, k = values[0], 1
    while k <= _MAX_PERIOD and values[k] is first:
        k += 1
    if k == 1 or k > _MAX_PERIOD:
        return 1
    heads = values[::k]
    short = heads[:-1]  # the strides that end before the last, partial run
    for j in range(1, k):
        stride = values[j::k]
        if stride != (heads if len(stride) == len(heads) else short):
            return 1
    return k


def to_timestamps(values: Any) -> pyarrow.Array:
    """Epoch seconds, datetimes (naive = UTC), ISO 8601 text or Arrow → timestamp[us, UTC]."""
    import pyarrow as pa

    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.cast(timestamp_type())
    try:  # the bulk case: numbers only, converted in C
        return _seconds_to_timestamps(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array([_datetime(v) for v in values], type=timestamp_type())


def _datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        moment = value
    elif isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value, tz=timezone.utc)
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


#: a list longer than this is searched for a repeating pattern before it is split in two
_LEAF = 2048
_MAX_PERIOD = 64    # long-format rows: one sample's metrics (period = metrics per sample)
_PROBE = 256        # elements compared before a candidate period is checked in full
_QUICK = 32         # ...and before those: most wrong candidates fail at the first sample's end


def _codes(values: list[Any], code: dict[Any, int]) -> Any:
    """int32 codes of ``values`` into ``code`` (value -> code, grown here).

    Long-format metric rows are regular: run, test, device, program and pid repeat per
    sample and the metric name cycles through a sample's metrics, so a column is, piece
    by piece, a short pattern tiled. A list comparison (C speed, identity first) proves
    the period and only the pattern is hashed; irregular stretches are halved until
    short, then hashed value by value. Worst case (no pattern) costs about one more
    pass over the list than hashing everything.
    """
    import numpy as np

    n = len(values)
    if n > _LEAF:
        first, quick, probe = values[0], values[:_QUICK], values[:_PROBE]
        for p in range(1, _MAX_PERIOD + 1):
            if values[p] == first and values[p:p + _QUICK] == quick and values[p:p + _PROBE] == probe:
                if _periodic(values, p):
                    pattern = np.array([code.setdefault(v, len(code)) for v in values[:p]], np.int32)
                    return np.tile(pattern, -(-n // p))[:n]
                break  # the smallest candidate fails: no period of the whole, split
        mid = n // 2
        return np.concatenate([_codes(values[:mid], code), _codes(values[mid:], code)])
    return np.fromiter([code.setdefault(v, len(code)) for v in values], np.int32, n)


def _periodic(values: list[Any], p: int) -> bool:
    """``values[i] == values[i + p]`` throughout, i.e. every stride ``values[i::p]`` is one
    value repeated: a ``count`` per stride (C speed, identity first), which costs a third
    of comparing ``values[p:]`` with ``values[:-p]`` (two copies of the list)."""
    if p == 1:
        return values.count(values[0]) == len(values)
    for i in range(p):
        stride = values[i::p]
        if stride.count(stride[0]) != len(stride):
            return False
    return True


def _encoded(values: list[Any], kind: type) -> tuple[Any, list[Any]] | None:
    """(codes, distinct values) when every value is a ``kind`` (and hashable), else None."""
    code: dict[Any, int] = {}
    try:
        codes = _codes(values, code)
    except TypeError:  # unhashable
        return None
    distinct = list(code)
    if not all(type(v) is kind for v in distinct):
        return None
    return codes, distinct


def _text(values: Any) -> pyarrow.Array:
    """Strings to a dictionary<int32, string> array (encoded while converting)."""
    import pyarrow as pa

    text = pa.dictionary(pa.int32(), pa.string())
    if isinstance(values, list):
        found = _encoded(values, str)
        if found is not None:
            return pa.DictionaryArray.from_arrays(pa.array(found[0]), pa.array(found[1], pa.string()))
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        return pa.array(values, type=text)
    if pa.types.is_dictionary(values.type):
        return values.cast(text)
    return values.cast(pa.string()).dictionary_encode()


def ints(values: Any) -> pyarrow.Array:
    """Integers (pids) as int64; a list of few distinct values is encoded like text."""
    import numpy as np
    import pyarrow as pa

    found = _encoded(values, int) if isinstance(values, list) else None
    if found is None:
        return pa.array(values, type=pa.int64())
    return pa.array(np.asarray(found[1], np.int64)[found[0]])


def _floats(values: list[Any]) -> pyarrow.Array:
    """Sample numbers as float64; numeric text is read as its number, anything else
    becomes null rather than sinking the row group (samples are checked only here, when
    the batch is long handed over)."""
    import pyarrow as pa

    fast = float64s(values)
    if fast is not None:
        return pa.array(fast)
    try:
        return pa.array(values, type=pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array([_number(v) for v in values], type=pa.float64())


def _number(value: Any) -> float | None:
    """A number, or numeric text (as numpy's bulk path reads it), as float; else None."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
