"""Shared helpers of tests/test_split_*.py: run the device kit's programs as a device would
(``python -m collab_devicekit.<program>`` with the shipped package folder on PYTHONPATH),
and import split_resnet's own (controller-side) modules."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from pytest_collab.runtime.shipping import local_root, with_pythonpath

CASE_DIR = Path(__file__).resolve().parents[1] / "testcases" / "split_resnet"
if str(CASE_DIR) not in sys.path:
    sys.path.insert(0, str(CASE_DIR))


def load_case_module(name: str):
    """Import ``testcases/split_resnet/<name>.py`` under a unique name: other test cases
    have modules of the same name (``report_sections``), and one pytest process sees all."""
    import importlib.util

    unique = f"split_resnet_{name}"
    if unique in sys.modules:
        return sys.modules[unique]
    spec = importlib.util.spec_from_file_location(unique, CASE_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None, f"no {name}.py in {CASE_DIR}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def device_env() -> dict[str, str]:
    """This environment with the device packages first on PYTHONPATH, as on the local lab."""
    return with_pythonpath(dict(os.environ), str(local_root()))


def kit_program(program: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"collab_devicekit.{program}", *args]


def start_tail(*args: str, timeout: float = 120.0) -> tuple[subprocess.Popen, int]:
    """Start the kit's split_tail as a real process and wait for its READY line."""
    proc = subprocess.Popen(kit_program("split_tail", *args), env=device_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        m = re.match(r"READY port=(\d+)", line)
        if m:
            return proc, int(m[1])
    proc.wait(timeout)
    raise AssertionError("split_tail exited before READY:\n" + "".join(seen))


def run_head(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess:
    """Run the kit's split_head to the end; its output in ``stdout``/``stderr``."""
    return subprocess.run(kit_program("split_head", *args), env=device_env(), capture_output=True,
                          text=True, timeout=timeout)


def stop(proc: subprocess.Popen) -> int:
    proc.terminate()
    code = proc.wait(timeout=30)
    if proc.stdout is not None:
        proc.stdout.close()
    return code
