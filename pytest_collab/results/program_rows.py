"""``COLLAB_RESULT {json}`` lines of device programs, journalled the moment they are printed.

Why: the documented pattern is ``client.wait()`` then ``collab.record(**row)`` for each of
``client.results()``; when the program fails after printing some rows, ``wait()`` raises
and nothing would be recorded. So every printed row goes to a journal at once (with the
program, its device and the test), and every ``collab.record()`` that carries a printed
row's values *claims* it. When the run's tables are written (at the end, or by
``collab recover`` after a crash) the rows of tests that did not pass and that no
``record()`` claimed are added to ``results.parquet`` with ``source = "program"``: a
crashed program's measurements are kept, a passing test's own rows are not doubled.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pytest_collab.results.records import ResultsJournal, read_journal


class ProgramRows:
    """One process's journal of printed rows and claims (``.parts/programs-<proc>.jsonl``)."""

    def __init__(self, path: Path) -> None:
        # flushed per line (a crash loses none); fsynced at most every 0.2 s: a program
        # printing rows in bursts must not wait ~3 ms per row on the reader thread
        self.journal = ResultsJournal(path, sync_every_s=0.2)
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._open: dict[str, list[tuple[int, dict[str, Any]]]] = {}  # test -> unclaimed rows

    def printed(self, meta: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        """A program printed a row: ``meta`` names run, test, testcase, device, program, provenance."""
        with self._lock:
            seq = next(self._seq)
            self._open.setdefault(str(meta["test"]), []).append((seq, dict(values)))
        self.journal.append({"k": "row", "seq": seq, "t": time.time(), "meta": dict(meta),
                             "values": dict(values)}, stamp=False)

    def claim(self, test: str, values: Mapping[str, Any]) -> None:
        """``record(**values)`` of ``test``: the first unclaimed printed row it contains is claimed."""
        with self._lock:
            rows = self._open.get(test, [])
            found = next((i for i, (_, row) in enumerate(rows)
                          if all(k in values and _same(values[k], v) for k, v in row.items())), None)
            if found is None:
                return
            seq = rows.pop(found)[0]
        self.journal.append({"k": "claim", "seq": seq}, stamp=False)

    def close(self) -> None:
        self.journal.close()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return bool(a == b)


def unrecorded_rows(journals: Iterable[Path], outcomes: Mapping[str, str]) -> list[dict[str, Any]]:
    """Result rows for printed, unclaimed rows of tests whose outcome is not ``passed``.

    A test missing from ``outcomes`` (its process died before saying) counts as not passed.
    """
    out: list[dict[str, Any]] = []
    for path in journals:
        lines = read_journal(Path(path))
        claimed = {line["seq"] for line in lines if line.get("k") == "claim"}
        for line in lines:
            if line.get("k") != "row" or line["seq"] in claimed:
                continue
            meta = line.get("meta") or {}
            if outcomes.get(str(meta.get("test"))) == "passed":
                continue
            row = {**meta, "record": None, "timestamp": line.get("t"), "source": "program"}
            row.update(line.get("values") or {})
            out.append(row)
    return out
