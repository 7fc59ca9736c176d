"""The wrapper protocol's two ends: the one writer of the wrapper's stdout, and the one
reader every consumer of its lines uses (the controller's live reader, ``collab recover``,
the dashboard).

Reader threads and the sampling loop write concurrently, so every object goes out under
one lock; the controller reads the stream live and must never see half a line.
"""
from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, BinaryIO, Callable, Dict, Optional, Sequence


def _chunk_encoder(encode: Callable[[Any], str]) -> Callable[[Any, int], Sequence[str]]:
    """``encode`` as ``f(obj, 0) -> chunks``: the C encoder made once, not per call.

    ``JSONEncoder.encode`` builds a fresh C encoder (and a closure) at every call; that
    was a tenth of a sample's interpreter work. The C encoder's signature is private, so
    it is used only where it encodes a probe exactly like ``encode``; else ``encode``."""
    try:
        from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
        fast = c_make_encoder(None, json.JSONEncoder().default, encode_basestring_ascii, None,
                              ":", ",", False, False, True)
        probe = {"a": -1.5e-7, "b": [1, "x\u00e9\n", None, True], "c": {}, "d": 2 ** 70}
        if "".join(fast(probe, 0)) == encode(probe):
            return fast
    except Exception:  # another Python's private API: the public one is right everywhere
        pass
    return lambda obj, _level: (encode(obj),)


def _file_descriptor(stream: BinaryIO) -> int:
    """The stream's fd, its buffer flushed, to write lines with ``os.write``; -1 when it
    has none (an in-memory stream)."""
    try:
        fd = stream.fileno()
        stream.flush()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return -1
    return fd


class Emitter:
    """Serialises protocol objects onto a binary stream; stops quietly once closed.

    ``on_broken`` runs once when the stream can no longer be written (the controller
    went away), so the caller can end the program tree like on a dead man's switch.
    """

    def __init__(self, stream: BinaryIO, on_broken: Optional[Callable[[], None]] = None) -> None:
        self._stream = stream
        self._fd = _file_descriptor(stream)
        self._lock = threading.Lock()
        self._closed = False
        self._on_broken = on_broken
        # Compact separators keep lines short; ASCII output survives any device locale.
        self._encode = json.JSONEncoder(separators=(",", ":")).encode
        self._chunks = _chunk_encoder(self._encode)

    def emit(self, kind: str, **fields: Any) -> None:
        """Write ``{"k": kind, "t": now, **fields}`` as one line (ignored after close)."""
        obj = {"k": kind, "t": time.time()}
        obj.update(fields)
        self._write((self._encode(obj) + "\n").encode("ascii"))

    def sample(self, pid: int, values: Dict[str, float]) -> None:
        """The ``m`` line of every tick, byte for byte ``emit("m", pid=pid, v=values)``
        (``%r`` of a float is its JSON form) with a third of the encoding work."""
        self._write(('{"k":"m","t":%r,"pid":%d,"v":%s}\n'
                     % (time.time(), pid, "".join(self._chunks(values, 0)))).encode("ascii"))

    def _write(self, data: bytes) -> None:
        broken = False
        with self._lock:
            if self._closed:
                return
            try:
                if self._fd >= 0:  # one syscall, where a buffered stream needs write + flush
                    done = os.write(self._fd, data)
                    while done < len(data):  # a signal cut the write short
                        data = data[done:]
                        done = os.write(self._fd, data)
                else:
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
