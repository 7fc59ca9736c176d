"""What every board-sensor probe shares: the probe registry, the sysfs root, start-up notes
and the energy-counter arithmetic.

Kept apart from :mod:`.sensors` (which holds the board probes and the ``Sensors`` set) so
that source modules such as :mod:`.rapl` and :mod:`.nvml` register themselves without an
import cycle. Stdlib only: this runs on the devices.

Every sensor file is looked up under ``PYTEST_COLLAB_SYSFS_ROOT`` (default ``/``), so a
fake tree can stand in for a board in tests and demos.
"""
from __future__ import annotations

import os
import re
import time
from typing import Callable, Dict, List, Optional, Tuple

from . import procfs

Reader = Callable[[], Dict[str, float]]
Probe = Callable[[], Optional[Reader]]

SYSFS_ROOT_ENV = "PYTEST_COLLAB_SYSFS_ROOT"
REGISTRY: List[Tuple[Probe, str, float]] = []
#: problems found while probing (a file that exists but may not be read, ...): the
#: ``Sensors`` set drains them once at start, so each is said once, never per sample
_NOTES: List[str] = []


def sensor(unit: str, period_s: float = 0.0) -> Callable[[Probe], Probe]:
    """Register a probe whose metrics are all in ``unit``; ``period_s`` throttles reads."""
    def register(probe: Probe) -> Probe:
        REGISTRY.append((probe, unit, period_s))
        return probe
    return register


def note(message: str) -> None:
    """Report a problem a probe found (said once, at wrapper start)."""
    if message not in _NOTES:
        _NOTES.append(message)


def take_notes() -> List[str]:
    """The notes so far, emptying the list."""
    found = list(_NOTES)
    del _NOTES[:]
    return found


def root() -> str:
    """The folder sensor paths are read under: ``$PYTEST_COLLAB_SYSFS_ROOT`` or ``/``."""
    return os.environ.get(SYSFS_ROOT_ENV) or "/"


def under(path: str) -> str:
    """``path`` (absolute, such as ``/sys/class/hwmon``) under the sysfs root."""
    return os.path.join(root(), path.lstrip("/"))


def shown(path: str) -> str:
    """A path as the board knows it (the fake root taken off), for messages."""
    base = root().rstrip("/")
    return path[len(base):] if base and path.startswith(base + "/") else path


def clean(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip()) or "unnamed"


def first_line(path: str) -> Optional[str]:
    data = procfs.read_file(path, 256)
    return data.decode("ascii", "replace").strip() if data else None


def open_counter(path: str, fix: str) -> int:
    """An fd for a counter file, or -1; a file that exists but may not be read is noted
    once, naming the file and ``fix``."""
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except PermissionError:
        note("%s is not readable (permission denied): %s" % (shown(path), fix))
    except OSError:
        pass
    return -1


class Counter:
    """A monotonic energy counter (joules) seen through wrap-arounds, with power from its
    differences.

    ``total`` is the energy since the first reading. ``wrap`` is the counter's range (the
    value after which it restarts at 0); without it a backwards step is skipped, never
    guessed. Power is the energy difference over the time between two readings.
    """

    __slots__ = ("wrap", "last", "total", "last_t", "power")

    def __init__(self, wrap: Optional[float] = None) -> None:
        self.wrap = wrap
        self.last: Optional[float] = None
        self.total = 0.0
        self.last_t = 0.0
        self.power: Optional[float] = None

    def update(self, raw: float, now: Optional[float] = None) -> None:
        if now is None:
            now = time.monotonic()
        last = self.last
        if last is not None:
            step = raw - last
            if step < 0:
                step = step + self.wrap if self.wrap else 0.0
            dt = now - self.last_t
            if dt > 1e-3:
                self.power = step / dt
            self.total += step
        self.last, self.last_t = raw, now


class CounterReader:
    """A reader of energy counters named ``energy_j.<name>`` with ``power_w.<name>``.

    ``read_raw`` returns ``{name: joules}`` (absolute counter values, a missing name
    when that read failed). Its ``units`` name every metric up front, since power only
    exists from the second reading on.
    """

    def __init__(self, read_raw: Callable[[], Dict[str, float]], wraps: Dict[str, Optional[float]]) -> None:
        self._read_raw = read_raw
        # name -> (its counter, its energy metric, its power metric): names built once
        self._counters = {name: (Counter(wrap), "energy_j." + name, "power_w." + name)
                          for name, wrap in wraps.items()}
        self.units: Dict[str, str] = {}
        for name in wraps:
            self.units["power_w." + name] = "W"
            self.units["energy_j." + name] = "J"

    def __call__(self) -> Dict[str, float]:
        now = time.monotonic()
        out: Dict[str, float] = {}
        counters = self._counters
        for name, raw in self._read_raw().items():
            counter, energy, power = counters[name]
            counter.update(raw, now)
            out[energy] = round(counter.total, 6)
            if counter.power is not None:
                out[power] = round(counter.power, 3)
        return out
