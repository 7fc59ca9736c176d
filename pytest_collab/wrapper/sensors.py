"""Board sensors (power, energy, temperature): a small registry, probed once at wrapper start.

Each registered *probe* looks once for its files or tool and returns a *reader* (a
function returning ``{metric_name: value}``, or ``{}`` when a read fails) or None when
the board does not have it. Nothing is guessed: a board without a sensor records none,
and says so once (``Sensors.notes``). Probes that found nothing cost nothing afterwards;
readers keep their files open. Every path is read under ``PYTEST_COLLAB_SYSFS_ROOT``
(default ``/``), so a fake tree can stand in for a board.

Sources: hwmon, Jetson INA3221 rails, thermal zones, RPi 5 PMIC (below), RAPL
(:mod:`.rapl`), NVML (:mod:`.nvml`, when ``pynvml`` is installed) and an external meter
declared in the profile (:mod:`.meter`). All of them are board-level: every process on
the device is in their numbers (docs/energy.md).

Adding a board: write a probe, decorate it with ``@sensor(unit, period_s)`` (from
:mod:`.probing`), name its metrics ``<quantity>_<unit>.<source>`` (``power_w.VDD_IN``,
``energy_j.rapl.package-0``, ``temp_c.cpu``), and keep it stdlib only. Use ``period_s``
for anything that spawns a process (such as ``vcgencmd``): the reader then runs at most
that often and its last values repeat. A reader whose metrics are not all there on the
first read (power from an energy counter) lists them in a ``units`` attribute.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import nvml, procfs, rapl  # noqa: F401  (importing registers their probes)
from .meter import Meter
from .probing import REGISTRY, Probe, Reader, clean, first_line, note, sensor, take_notes, under

NO_POWER = ("no power sensor found on this board (RAPL, NVML, hwmon, INA3221, RPi 5 PMIC) "
            "and no power_meter in its profile entry: no power or energy is recorded here; "
            "see docs/energy.md to add an external meter")


def _files_reader(files: Dict[str, Tuple[int, float]]) -> Optional[Reader]:
    """A reader of ``{metric: (fd, scale)}`` integer files; None when none reads now."""
    def read() -> Dict[str, float]:
        out: Dict[str, float] = {}
        for name, (fd, scale) in files.items():
            try:  # os.pread inline, not procfs.pread: this runs at every tick
                out[name] = round(int(os.pread(fd, 64, 0)) * scale, 3)
            except (OSError, ValueError):  # unreadable now, or empty / torn
                pass
        return out
    return read if files and read() else None


def _open_scaled(path: str, scale: float) -> Optional[Tuple[int, float]]:
    fd = procfs.open_ro(path)
    return (fd, scale) if fd >= 0 else None


@sensor("W")
def hwmon_power() -> Optional[Reader]:
    """Linux hwmon power meters (``power*_input``, microwatts): desktops, some boards."""
    files: Dict[str, Tuple[int, float]] = {}
    for path in sorted(glob.glob(under("/sys/class/hwmon/hwmon*/power*_input"))):
        folder, base = os.path.split(path)
        chip = first_line(os.path.join(folder, "name")) or os.path.basename(folder)
        label = first_line(os.path.join(folder, base.replace("_input", "_label")))
        opened = _open_scaled(path, 1e-6)
        if opened:
            files["power_w.%s.%s" % (clean(chip), clean(label or base[:-6]))] = opened
    return _files_reader(files)


@sensor("W")
def jetson_ina3221() -> Optional[Reader]:
    """Jetson INA3221 rails: hwmon layout (L4T >= 34: mV x mA) or IIO layout (L4T 32: mW)."""
    rails: Dict[str, Tuple[int, int]] = {}
    for folder in glob.glob(under("/sys/bus/i2c/drivers/ina3221*/*/hwmon/hwmon*")):
        for label_path in glob.glob(os.path.join(folder, "in*_label")):
            n = os.path.basename(label_path)[2:-6]
            volt = procfs.open_ro(os.path.join(folder, "in%s_input" % n))
            curr = procfs.open_ro(os.path.join(folder, "curr%s_input" % n))
            if volt >= 0 and curr >= 0:
                rails["power_w.%s" % clean(first_line(label_path) or "rail" + n)] = (volt, curr)
    files: Dict[str, Tuple[int, float]] = {}
    for path in glob.glob(under("/sys/bus/i2c/drivers/ina3221*/*/iio:device*/in_power*_input")):
        n = os.path.basename(path)[len("in_power"):-len("_input")]
        name = first_line(os.path.join(os.path.dirname(path), "rail_name_%s" % n)) or "rail" + n
        opened = _open_scaled(path, 1e-3)
        if opened:
            files["power_w.%s" % clean(name)] = opened
    if rails:
        def read() -> Dict[str, float]:
            out: Dict[str, float] = {}
            for name, (volt, curr) in rails.items():
                try:
                    out[name] = round(int(os.pread(volt, 32, 0)) * int(os.pread(curr, 32, 0)) * 1e-6, 3)
                except (OSError, ValueError):
                    pass
            return out
        return read if read() else None
    return _files_reader(files)


@sensor("C")
def thermal_zones() -> Optional[Reader]:
    """Kernel thermal zones (millidegrees C): Raspberry Pi, Jetson, most laptops."""
    files: Dict[str, Tuple[int, float]] = {}
    for folder in sorted(glob.glob(under("/sys/class/thermal/thermal_zone*"))):
        kind = first_line(os.path.join(folder, "type")) or os.path.basename(folder)
        name = "temp_c.%s" % clean(kind)
        if name in files:
            name += "." + os.path.basename(folder)[len("thermal_zone"):]
        opened = _open_scaled(os.path.join(folder, "temp"), 1e-3)
        if opened:
            files[name] = opened
    return _files_reader(files)


_PMIC = re.compile(r"^\s*(\S+)_([AV]) \w+\(\d+\)=([0-9.]+)[AV]\s*$", re.M)


@sensor("W", period_s=10.0)
def rpi_pmic() -> Optional[Reader]:
    """Raspberry Pi 5 PMIC rails (``vcgencmd pmic_read_adc``): sum of volts x amps."""
    tool = shutil.which("vcgencmd")
    if tool is None:
        return None

    def read() -> Dict[str, float]:
        try:
            text = subprocess.run([tool, "pmic_read_adc"], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, timeout=2).stdout.decode("ascii", "replace")
        except (OSError, subprocess.SubprocessError):
            return {}
        amps: Dict[str, float] = {}
        volts: Dict[str, float] = {}
        for rail, kind, value in _PMIC.findall(text):
            (amps if kind == "A" else volts)[rail] = float(value)
        both = [amps[r] * volts[r] for r in amps if r in volts]
        return {"power_w.pmic": round(sum(both), 3)} if both else {}
    return read if read() else None


class Sensors:
    """The readers found on this board, the units of their metrics, and what to tell once.

    ``meter`` is the device's external meter spec (``--power-meter``), if any. ``notes``
    are the problems probing found (an unreadable counter, a meter that can not be
    opened, a board with no power source at all), to be said once at start; ``on_note``
    hears of a problem found later (a meter command that keeps printing nothing).
    """

    def __init__(self, probes: Optional[List[Tuple[Probe, str, float]]] = None,
                 meter: Optional[Mapping[str, Any]] = None,
                 on_note: Optional[Callable[[str], None]] = None) -> None:
        self.units: Dict[str, str] = {}
        self._active: List[List] = []  # [reader, period_s, next_due, last_values]
        take_notes()  # left over from an earlier Sensors in this process
        found: List[Tuple[Any, float]] = []
        if meter:
            try:
                found.append((Meter(meter, on_note), 0.0))
            except ValueError as exc:  # the program runs already: say it, do not stop it
                note("power_meter %s is not valid (%s): fix it in the profile (docs/energy.md)"
                     % (dict(meter), exc))
        for probe, unit, period in REGISTRY if probes is None else probes:
            try:
                reader = probe()
                first = reader() if reader is not None else {}
            except Exception:  # a broken sensor file must never stop the wrapper
                continue
            if first:
                self.units.update(getattr(reader, "units", None) or dict.fromkeys(first, unit))
                self._active.append([reader, period, time.monotonic() + period, first])
        for reader, period in found:
            self.units.update(reader.units)
            self._active.append([reader, period, 0.0, {}])
        # Read at every sample, or at most every period_s (then the last values repeat).
        self._every: List[Reader] = [entry[0] for entry in self._active if entry[1] <= 0]
        self._throttled = [entry for entry in self._active if entry[1] > 0]
        self.notes = take_notes()
        if probes is None and "W" not in self.units.values():
            self.notes.append(NO_POWER)

    def __bool__(self) -> bool:
        return bool(self._active)

    def read(self, into: Dict[str, float]) -> None:
        """Add every sensor's current values (or a throttled sensor's last ones) to ``into``."""
        for reader in self._every:
            try:
                into.update(reader())
            except Exception:  # a sensor that fails now may read again at the next sample
                pass
        if not self._throttled:
            return
        now = time.monotonic()
        for entry in self._throttled:
            if now >= entry[2]:
                try:
                    entry[3] = entry[0]()
                except Exception:
                    entry[3] = {}
                entry[2] = now + entry[1]
            into.update(entry[3])

    def close(self) -> None:
        """Stop what holds resources (a meter's thread and command, NVML)."""
        for entry in self._active:
            close = getattr(entry[0], "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass
