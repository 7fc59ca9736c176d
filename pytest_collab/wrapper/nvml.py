"""NVIDIA GPUs through NVML (``nvidia-ml-py``, imported as ``pynvml``), where it is installed.

The one optional import of the wrapper: a device without the package, or without a
driver, simply has no GPU source. Per GPU ``i`` it reports ``power_w.nvml.gpu<i>`` (the
driver's power reading) and, on GPUs that have it (Volta and newer),
``energy_j.nvml.gpu<i>``: the total-energy counter since wrapper start, which integrates
more exactly than any sampling of power. Both are whole-GPU numbers, shared by every
process on it.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, List, Optional, Tuple

from .probing import Counter, Reader, note, sensor


class NvmlReader:
    """Reads every GPU's power and energy counter; ``close()`` shuts NVML down."""

    def __init__(self, nvml: Any, gpus: List[Tuple[str, Any, bool]]) -> None:
        self._nvml = nvml
        self._gpus = gpus  # (name, handle, has energy counter)
        self._counters = {name: Counter() for name, _h, energy in gpus if energy}
        self.units: Dict[str, str] = {}
        for name, _h, energy in gpus:
            self.units["power_w." + name] = "W"
            if energy:
                self.units["energy_j." + name] = "J"

    def __call__(self) -> Dict[str, float]:
        nvml = self._nvml
        out: Dict[str, float] = {}
        for name, handle, energy in self._gpus:
            try:
                out["power_w." + name] = round(nvml.nvmlDeviceGetPowerUsage(handle) * 1e-3, 3)
                if energy:
                    counter = self._counters[name]
                    counter.update(nvml.nvmlDeviceGetTotalEnergyConsumption(handle) * 1e-3)
                    out["energy_j." + name] = round(counter.total, 6)
            except Exception:  # a GPU fallen off the bus: skip it this sample
                continue
        return out

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:
            pass


def _supported(call: Any, handle: Any) -> bool:
    try:
        call(handle)
        return True
    except Exception:  # NVMLError_NotSupported on older GPUs
        return False


@sensor("W")
def nvml() -> Optional[Reader]:
    """Every GPU NVML can read power from; silent where ``pynvml`` is not installed."""
    try:
        lib: Any = importlib.import_module("pynvml")
    except ImportError:
        return None
    try:
        lib.nvmlInit()
        count = lib.nvmlDeviceGetCount()
    except Exception as exc:  # the package without a driver (no GPU, or a container without it)
        note("pynvml is installed but NVML does not start (%s): no GPU power recorded; "
             "check the NVIDIA driver (nvidia-smi) or uninstall nvidia-ml-py" % exc)
        return None
    gpus: List[Tuple[str, Any, bool]] = []
    for i in range(count):
        try:
            handle = lib.nvmlDeviceGetHandleByIndex(i)
        except Exception:
            continue
        if _supported(lib.nvmlDeviceGetPowerUsage, handle):
            gpus.append(("nvml.gpu%d" % i, handle,
                         _supported(lib.nvmlDeviceGetTotalEnergyConsumption, handle)))
    reader = NvmlReader(lib, gpus)
    if gpus and reader():
        return reader
    reader.close()
    return None
