"""Shared helpers of tests/test_split_*.py: import the device modules, run the device programs."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

CASE_DIR = Path(__file__).resolve().parents[1] / "testcases" / "split_resnet"
if str(CASE_DIR) not in sys.path:
    sys.path.insert(0, str(CASE_DIR))


def load_case_module(name: str):
    """Import ``testcases/split_resnet/<name>.py`` under a unique name: other test cases
    have modules of the same name (``report_sections``), and one pytest process sees all."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"split_resnet_{name}", CASE_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_tail(*args: str, timeout: float = 120.0) -> tuple[subprocess.Popen, int]:
    """Start tail_server.py as a real process and wait for its READY line."""
    proc = subprocess.Popen([sys.executable, str(CASE_DIR / "tail_server.py"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        m = re.match(r"READY port=(\d+)", line)
        if m:
            return proc, int(m[1])
    proc.wait(timeout)
    raise AssertionError("tail_server exited before READY:\n" + "".join(seen))


def stop(proc: subprocess.Popen) -> int:
    proc.terminate()
    code = proc.wait(timeout=30)
    if proc.stdout is not None:
        proc.stdout.close()
    return code
