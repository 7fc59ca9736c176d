"""The one place a device program's result line is written: ``COLLAB_RESULT {json}``.

The controller (``pytest_collab.deploy``) turns each such line of a program's output into
an object of ``program.results()``; a test records them. Standard library only. numpy
scalars and arrays are accepted (anything with ``.item()``/``.tolist()``), and
non-finite floats go out as ``NaN``/``Infinity``, which the controller's json reads back.
"""
from __future__ import annotations

import json
import sys
from typing import Any, TextIO

PREFIX = "COLLAB_RESULT "


def _plain(value: Any) -> Any:
    """JSON for what ``json`` does not know: numpy arrays and scalars, paths, sets."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def result_line(row: dict[str, Any]) -> str:
    """The line for ``row`` (without the newline)."""
    if not isinstance(row, dict):
        raise TypeError(f"a result is a dict of column -> value, got {type(row).__name__}")
    return PREFIX + json.dumps(row, default=_plain)


def emit(row: dict[str, Any], stream: TextIO | None = None) -> None:
    """Print one result row for the controller, flushed at once (the program may be killed)."""
    out = stream if stream is not None else sys.stdout
    out.write(result_line(row) + "\n")
    out.flush()
