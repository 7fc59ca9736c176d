"""A fake board for the wrapper's sensors: sysfs/powercap files, a fake NVML, a meter script.

Point ``PYTEST_COLLAB_SYSFS_ROOT`` at :attr:`FakeBoard.root` and put :attr:`FakeBoard.nvml_dir`
on ``PYTHONPATH`` and the wrapper sees a board with every source: RAPL (package, core,
dram; the package counter near its wrap), hwmon power, a Jetson INA3221 rail, a thermal
zone and an NVIDIA GPU. :meth:`FakeBoard.drive` moves the energy counters in real time at
a known power, so what the wrapper reports can be checked against it.

As a demo: ``python tests/fake_board.py DIR`` lays out a board in DIR and drives it until
interrupted; then run the wrapper with ``PYTEST_COLLAB_SYSFS_ROOT=DIR``.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Optional

#: a package counter range small enough that driving it wraps within seconds
PACKAGE_RANGE_UJ = 20_000_000
#: the watts each source reports while driven (RAPL domains and the GPU integrate them)
WATTS = {"package": 6.0, "core": 4.0, "dram": 1.5, "gpu": 30.0}
HWMON_UW = 2_500_000
INA_MV, INA_MA = 5000, 1200  # VDD_IN: 6 W
TEMP_MC = 47_500

FAKE_PYNVML = '''"""A stand-in for nvidia-ml-py: one GPU whose state is read from state.json beside it."""
import json, os
_STATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "state.json")
class NVMLError(Exception):
    pass
_CACHE = [None, None]
def _state():  # re-read only when the file changed: closer to a real NVML call's cost
    stamp = os.stat(_STATE).st_mtime_ns
    if _CACHE[0] != stamp:
        with open(_STATE) as f:
            _CACHE[:] = [stamp, json.load(f)]
    return _CACHE[1]
def nvmlInit():
    if _state().get("broken"):
        raise NVMLError("Driver Not Loaded")
def nvmlShutdown():
    pass
def nvmlDeviceGetCount():
    return 1
def nvmlDeviceGetHandleByIndex(i):
    return i
def nvmlDeviceGetPowerUsage(h):
    return _state()["power_mw"]
def nvmlDeviceGetTotalEnergyConsumption(h):
    return _state()["energy_mj"]
'''

METER_SCRIPT = "#!/bin/sh\necho \"power: ${WATTS:-%s} W\"\n"


class FakeBoard:
    """The files of one fake board under ``root``."""

    def __init__(self, base: Path, package_uj: int = PACKAGE_RANGE_UJ - 3_000_000) -> None:
        self.root: Path = base / "root"
        self.nvml_dir = base / "nvml"
        self.meter = base / "meter.sh"
        rapl = self.root / "sys/class/powercap"
        self.counters: Dict[str, Path] = {}
        for zone, name, start, span in (("intel-rapl:0", "package-0", package_uj, PACKAGE_RANGE_UJ),
                                        ("intel-rapl:0:0", "core", 1_000, 262_143_328_850),
                                        ("intel-rapl:0:1", "dram", 5_000, 262_143_328_850)):
            folder = rapl / zone
            folder.mkdir(parents=True)
            (folder / "name").write_text(name + "\n")
            (folder / "max_energy_range_uj").write_text("%d\n" % span)
            (folder / "energy_uj").write_text("%d\n" % start)
            self.counters[name.split("-")[0]] = folder / "energy_uj"
        (rapl / "intel-rapl").mkdir()  # the control-type folder has no counter of its own
        hwmon = self.root / "sys/class/hwmon/hwmon0"
        hwmon.mkdir(parents=True)
        (hwmon / "name").write_text("fakechip\n")
        (hwmon / "power1_input").write_text("%d\n" % HWMON_UW)
        (hwmon / "power1_label").write_text("board\n")
        ina = self.root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
        ina.mkdir(parents=True)
        (ina / "in1_label").write_text("VDD_IN\n")
        (ina / "in1_input").write_text("%d\n" % INA_MV)
        (ina / "curr1_input").write_text("%d\n" % INA_MA)
        thermal = self.root / "sys/class/thermal/thermal_zone0"
        thermal.mkdir(parents=True)
        (thermal / "type").write_text("cpu-thermal\n")
        (thermal / "temp").write_text("%d\n" % TEMP_MC)
        self.nvml_dir.mkdir()
        (self.nvml_dir / "pynvml.py").write_text(FAKE_PYNVML)
        self.set_gpu(power_mw=int(WATTS["gpu"] * 1000), energy_mj=1_000_000)
        self.meter.write_text(METER_SCRIPT % "7.25")
        self.meter.chmod(0o755)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def set_gpu(self, **state: object) -> None:
        path = self.nvml_dir / "state.json"
        old = json.loads(path.read_text()) if path.is_file() else {}
        old.update(state)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(old))
        tmp.replace(path)

    def read_counter(self, domain: str) -> int:
        return int(self.counters[domain].read_text())

    def step(self, seconds: float) -> None:
        """Advance every energy counter by ``seconds`` at :data:`WATTS` (wrapping as RAPL does)."""
        for domain, path in self.counters.items():
            span = PACKAGE_RANGE_UJ if domain == "package" else 262_143_328_850
            value = (int(path.read_text()) + round(WATTS[domain] * seconds * 1e6)) % span
            path.write_text("%d\n" % value)  # same inode: the wrapper's open fd sees it
        energy = json.loads((self.nvml_dir / "state.json").read_text())["energy_mj"]
        self.set_gpu(energy_mj=energy + round(WATTS["gpu"] * seconds * 1e3))

    def drive(self, interval: float = 0.01) -> "FakeBoard":
        """Advance the counters in real time on a thread until :meth:`stop`."""
        def run() -> None:
            last = time.monotonic()
            while not self._stop.wait(interval):
                now = time.monotonic()
                self.step(now - last)
                last = now
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


if __name__ == "__main__":
    board = FakeBoard(Path(sys.argv[1]))
    print("PYTEST_COLLAB_SYSFS_ROOT=%s PYTHONPATH=%s; meter: %s" % (board.root, board.nvml_dir, board.meter))
    board.drive()
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        board.stop()
