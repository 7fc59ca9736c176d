"""RAPL energy counters of x86 CPUs (Intel, and AMD Zen through the same driver) via powercap.

``/sys/class/powercap/intel-rapl:N[:M]/energy_uj`` counts microjoules per domain
(``package-N``, its ``core``, ``uncore`` and ``dram`` subzones, ``psys`` on some laptops)
and wraps at ``max_energy_range_uj``. Counter differences give energy exactly, so they
are reported as ``energy_j.rapl.<domain>`` (since wrapper start) with the mean power
over each sample interval as ``power_w.rapl.<domain>``. These are CPU-package-level
numbers: every process on the machine is in them.

Since Linux 5.10 (CVE-2020-8694) ``energy_uj`` is readable by root only; such a file is
reported once, with the fix, instead of being silently missing.
"""
from __future__ import annotations

import glob
import os
from typing import Dict, Optional

from .probing import CounterReader, Reader, clean, first_line, open_counter, sensor, under

FIX = ("run the wrapper as root, or let everyone read the RAPL counters: "
       "'sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj "
       "/sys/class/powercap/intel-rapl:*:*/energy_uj' (again after each boot, or with a udev "
       "rule; see docs/energy.md)")


def _domain(zone: str) -> str:
    """``package-0``, ``package-0.dram``: subzone names (``core``, ``dram``) repeat per
    package, so they carry their package's name."""
    name = clean(first_line(os.path.join(zone, "name")) or os.path.basename(zone))
    parent = os.path.basename(zone).rsplit(":", 1)[0]
    if os.path.basename(zone).count(":") == 2:
        top = first_line(os.path.join(os.path.dirname(zone), parent, "name"))
        return "%s.%s" % (clean(top or parent), name)
    return name


@sensor("W")
def rapl() -> Optional[Reader]:
    """Every readable RAPL domain; ``intel-rapl-mmio`` repeats the package and is skipped."""
    files: Dict[str, int] = {}
    wraps: Dict[str, Optional[float]] = {}
    for zone in sorted(glob.glob(under("/sys/class/powercap/intel-rapl:*"))):
        counter = os.path.join(zone, "energy_uj")
        if not os.path.exists(counter):
            continue
        fd = open_counter(counter, FIX)
        if fd < 0:
            continue
        name = "rapl." + _domain(zone)
        span = first_line(os.path.join(zone, "max_energy_range_uj"))
        files[name] = fd
        wraps[name] = int(span) * 1e-6 if span and span.isdigit() and int(span) > 0 else None
    if not files:
        return None

    def read_raw() -> Dict[str, float]:
        out: Dict[str, float] = {}
        for name, fd in files.items():
            try:  # os.pread inline, not procfs.pread: this runs at every tick
                out[name] = int(os.pread(fd, 32, 0)) * 1e-6
            except (OSError, ValueError):  # unreadable now, or empty / torn
                pass
        return out

    reader = CounterReader(read_raw, wraps)
    return reader if reader() else None

