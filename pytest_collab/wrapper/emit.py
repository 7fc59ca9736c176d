"""The wrapper protocol's two ends: the one writer of the wrapper's stdout, and the one
reader every consumer of its lines uses (the controller's live reader, ``collab recover``,
the dashboard).

Reader threads and the sampling loop write concurrently, so every object goes out under
one lock; the controller reads the stream live and must never see half a line.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any, BinaryIO, Callable, Optional


class Emitter:
    """Serialises protocol objects onto a binary stream; stops quietly once closed.

    ``on_broken`` runs once when the stream can no longer be written (the controller
    went away), so the caller can end the program tree like on a dead man's switch.
    """

    def __init__(self, stream: BinaryIO, on_broken: Optional[Callable[[], None]] = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._closed = False
        self._on_broken = on_broken
        # Compact separators keep lines short; ASCII output survives any device locale.
        self._encode = json.JSONEncoder(separators=(",", ":")).encode

    def emit(self, kind: str, **fields: Any) -> None:
        """Write ``{"k": kind, "t": now, **fields}`` as one line (ignored after close)."""
        obj = {"k": kind, "t": time.time()}
        obj.update(fields)
        data = (self._encode(obj) + "\n").encode("ascii")
        broken = False
        with self._lock:
            if self._closed:
                return
            try:
                self._stream.write(data)
                self._stream.flush()
            except (OSError, ValueError):
                self._closed = broken = True
        if broken and self._on_broken is not None:
            self._on_broken()

    def close(self) -> None:
        """Refuse further objects, so nothing can follow the ``exit`` line."""
        with self._lock:
            self._closed = True


def decode(line: "str | bytes") -> Optional[dict]:
    """A protocol line as its object (``obj["k"]`` is its kind), or None for anything else:
    a program's stray output, a line torn by a crash, JSON that is not a protocol object."""
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and isinstance(obj.get("k"), str) else None
