"""Columnar buffering of wrapper samples until a flush (the metrics writer's hot path).

Kept apart from :mod:`pytest_collab.results.metrics` so each stays one job: this module turns
many small ``m`` objects into a few Arrow arrays as cheaply as Python allows (the hot
path of every device reader thread); ``metrics`` owns schemas, files and merges, and
:mod:`~pytest_collab.results.metrics_columns` the list-to-Arrow conversions.
"""
from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Iterable, Mapping
from itertools import chain, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from pytest_collab.results.metrics_columns import _floats, _seconds_to_timestamps, _text

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow

_V, _T = itemgetter("v"), itemgetter("t")
_PIDS = repeat("pid")   # dict.get(obj, "pid") per object: no method look-up per call


class _SampleBuffer:
    """Wrapper samples not yet written, interned so the hot path stays a few appends.

    A program's (run, test, device, program, pid) and a sample's set of metric names repeat
    on every line, so each is stored once and referred to by a small int; the expansion
    to one row per metric is vectorised (numpy / Arrow) at flush time, where the usual
    case (every sample has the same number of metrics) is a plain ``np.repeat``.
    """

    __slots__ = ("sources", "keysets", "sid", "kid", "run", "t", "values", "packed", "chunks", "units",
                 "merged", "rows")

    def __init__(self) -> None:
        self.sources: dict[tuple, int] = {}     # (run, test, device, program, pid) -> id
        self.keysets: dict[tuple, int] = {}     # metric names of a sample -> id
        self.sid: list[int] = []                # per run of samples: source id,
        self.kid: list[int] = []                # metric names id,
        self.run: list[int] = []                # and how many samples (a batch is one run)
        self.t = array("d")                     # per sample: epoch seconds, NaN when unreadable
        self.values: list[Any] = []               # loose values (checked at flush), after every chunk
        self.packed = bytearray()                 # or: float64s of uniform batches, after every chunk
        self.chunks: list[Any] = []               # earlier pieces of either kind, in row order
        self.units: dict[str, str | None] = {}  # metric -> unit, one meaning per buffer
        self.merged: list[Mapping[str, str]] = []
        self.rows = 0                           # one per metric value buffered

    def merge_units(self, units: Mapping[str, str]) -> bool:
        """Fold ``units`` into the metric → unit map; False on a conflict.

        Each program passes the same mapping object with every sample, so a mapping
        already merged is recognised by identity (kept referenced: ids never recycle).
        """
        for seen in self.merged:
            if seen is units:
                return True
        for name, unit in units.items():
            if self.units.setdefault(name, unit) != unit:
                return False
        self.merged.append(units)
        return True

    def add_one(self, source: tuple, t: float, values: Mapping[str, float]) -> None:
        """One sample, without :meth:`add`'s per-call set-up (the per-line API's path)."""
        keys, numbers = tuple(values), values.values()  # what can fail, before any change
        if self.packed:
            self._close_packed()
        sid = self.sources.setdefault(source, len(self.sources))
        kid = self.keysets.setdefault(keys, len(self.keysets))
        self.values.extend(numbers)
        self.sid.append(sid)
        self.kid.append(kid)
        self.run.append(1)
        self.t.append(_seconds(t))
        self.rows += len(keys)

    def add(self, source: tuple, samples: Iterable[Mapping[str, Any]]) -> int:
        """Append wrapper ``m`` objects (``t``, ``v``, optional ``pid``); returns how many
        were skipped as malformed (a torn line must not cost its batch or its reader).

        ``source`` ends with the default pid; an object's own truthy ``pid`` wins. This
        loop is the per-sample cost of ingest, so it is kept to look-ups and appends.
        """
        samples = samples if isinstance(samples, list) else list(samples)
        if samples and self._add_uniform(source, samples):
            return 0
        if self.packed:
            self._close_packed()
        sources, keysets = self.sources, self.keysets
        sid_add, kid_add, run_add, t_add = self.sid.append, self.kid.append, self.run.append, self.t.append
        values_add, head, default_pid = self.values.extend, source[:4], source[4]
        last_pid, last_keys, sid, kid, skipped = object(), None, -1, -1, 0
        before = len(self.values)
        try:
            for obj in samples:
                try:  # everything that can fail, before the columns grow
                    values, t, pid = obj["v"], obj["t"], obj.get("pid") or default_pid
                    keys, numbers = tuple(values), values.values()
                    if pid != last_pid:
                        sid, last_pid = sources.setdefault((*head, pid), len(sources)), pid
                except (KeyError, TypeError, AttributeError):
                    skipped += 1
                    continue
                if keys != last_keys:  # a program repeats its names: skip hashing them
                    kid, last_keys = keysets.setdefault(keys, len(keysets)), keys
                sid_add(sid)
                run_add(1)
                t_add(t if type(t) is float else _seconds(t))
                kid_add(kid)
                values_add(numbers)
        finally:
            self.rows += len(self.values) - before
        return skipped

    def _add_uniform(self, source: tuple, samples: list[Mapping[str, Any]]) -> bool:
        """The usual batch in C-speed passes: every object well formed, one pid, one set
        of metric names. False (nothing changed) sends the batch to the checking loop.

        The names are proved alike by one list comparison: all the ``v`` dicts' keys in a
        row equal to the first dict's keys tiled (dict keys are distinct, so no dict can
        be longer or shorter than the first). The values are unboxed here, in the same
        pass that reads them (``struct.pack``): the dicts are not kept until the flush,
        and a buffered row costs 8 bytes, not its share of a dict.
        """
        try:
            vs = list(map(_V, samples))
            ts = list(map(_T, samples))
            pids = list(map(dict.get, samples, _PIDS))  # type: ignore[arg-type]  # TypeError unless dicts
            keys = list(vs[0])
            n, width = len(samples), len(keys)
            if pids.count(pids[0]) != n or list(chain.from_iterable(vs)) != keys * n:
                return False
            times = struct.pack(f"{n}d", *ts)  # a None or text t: the checking loop reads it
            loose = None
            try:
                packed = struct.pack(f"{n * width}d", *chain.from_iterable(map(dict.values, vs)))
            except (struct.error, OverflowError):  # numeric text, None...: _floats decides at flush
                loose = list(chain.from_iterable(map(dict.values, vs)))
        except (KeyError, TypeError, AttributeError, struct.error, OverflowError):
            return False
        pid = pids[0] or source[4]
        sid = self.sources.setdefault((*source[:4], pid), len(self.sources))
        kid = self.keysets.setdefault(tuple(keys), len(self.keysets))
        self.sid.append(sid)
        self.kid.append(kid)
        self.run.append(n)
        self.t.frombytes(times)
        if loose is not None:
            if self.packed:
                self._close_packed()
            self.values.extend(loose)
        else:
            if self.values:  # keep row order: the loose values so far come first
                self.chunks.append(self.values)
                self.values = []
            self.packed += packed
        self.rows += n * width
        return True

    def _close_packed(self) -> None:
        """Loose values follow: the packed ones so far become a chunk (row order kept)."""
        self.chunks.append(self.packed)
        self.packed = bytearray()

    def _value_array(self) -> pyarrow.Array:
        """Every buffered value in row order: packed batches and the loose values."""
        import numpy as np
        import pyarrow as pa

        arrays = []
        for chunk in [*self.chunks, self.packed or self.values]:
            if isinstance(chunk, bytearray):
                arrays.append(pa.array(np.frombuffer(chunk, np.float64)))
            elif chunk:
                arrays.append(_floats(chunk))
        if len(arrays) == 1:
            return arrays[0]
        return pa.concat_arrays(arrays) if arrays else _floats([])

    def table(self, schema: pyarrow.Schema) -> pyarrow.Table:
        """The buffered samples as rows: per-sample columns repeated per metric."""
        import numpy as np
        import pyarrow as pa

        names = list(dict.fromkeys(n for keys in self.keysets for n in keys))
        code = {n: i for i, n in enumerate(names)}
        lens = np.fromiter(map(len, self.keysets), np.intp, len(self.keysets))
        grid = np.full((len(lens), int(lens.max(initial=0))), -1, dtype=np.int32)
        for i, keys in enumerate(self.keysets):
            grid[i, :len(keys)] = [code[n] for n in keys]
        runs = np.asarray(self.run, dtype=np.intp)
        kid = np.repeat(np.asarray(self.kid, dtype=np.intp), runs)
        per_sample = grid[kid]
        per_row: Any
        if (lens == grid.shape[1]).all():  # every sample has the same number of metrics
            codes, per_row = per_sample.ravel(), grid.shape[1]
        else:
            codes, per_row = per_sample[per_sample >= 0], lens[kid]
        sid = np.repeat(np.asarray(self.sid, dtype=np.intp), runs)
        run, test, device, program, pid = (list(c) for c in zip(*self.sources))
        per_source = [_text(run), _text(test), _text(device), _text(program),
                      pa.array(pid, type=pa.int64())]
        units = pa.array([self.units.get(n) for n in names], pa.string()).dictionary_encode()
        return pa.Table.from_arrays([
            *(_expand(col, sid, per_row) for col in per_source),
            _expand(_seconds_to_timestamps(np.frombuffer(self.t, np.float64)), None, per_row),
            pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(map(str, names), pa.string()),
                                           safe=False),  # codes of ``names`` by construction
            self._value_array(),
            _expand(units, codes, 1),
        ], schema=schema)


def _seconds(t: Any) -> float:
    """A sample's ``t`` as float seconds: numbers and numeric text read, anything else
    NaN (a null timestamp, as the whole-column conversion makes it)."""
    try:
        return float(t)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _expand(array: pyarrow.Array, rows: Any, repeats: Any) -> pyarrow.Array:
    """``array`` gathered at ``rows`` (None: all) and each item repeated ``repeats`` times.

    Done in numpy on the fixed-width buffers (several times faster than ``take``); the
    gather runs per sample and only the cheap repeat per row.
    """
    import numpy as np
    import pyarrow as pa

    if array.null_count:
        index = np.arange(len(array)) if rows is None else rows
        return array.take(pa.array(np.repeat(index, repeats)))
    if pa.types.is_dictionary(array.type):  # indices of a valid array stay valid: no check
        return pa.DictionaryArray.from_arrays(_expand(array.indices, rows, repeats),
                                              array.dictionary, safe=False)
    ints = array.view(pa.int64()) if pa.types.is_timestamp(array.type) else array
    picked = ints.to_numpy()
    if rows is not None:
        picked = picked[rows]
    if not (isinstance(repeats, int) and repeats == 1):
        picked = np.repeat(picked, repeats)
    return pa.array(picked).view(array.type)
