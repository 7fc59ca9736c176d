"""The plugin's per-test overhead against plain pytest, measured side by side.

Three runs of the same N empty tests: pytest with the plugin disabled (-p no:collab),
with the plugin loaded, and with every test asking for the ``collab`` fixture (which
records one result row each). Prints seconds per test and the ratios, medians of repeats.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLAIN = "import pytest\n@pytest.mark.parametrize('i', range({n}))\ndef test_empty(i):\n    pass\n"
WITH_FIXTURE = ("import pytest\n@pytest.mark.parametrize('i', range({n}))\n"
                "def test_collab(collab, i):\n    collab.record(value=i)\n")


def run(folder: Path, args: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=folder, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_plain.py").write_text(PLAIN.format(n=args.tests))
        (folder / "test_fixture.py").write_text(WITH_FIXTURE.format(n=args.tests))
        cases = {
            "plain pytest (-p no:collab)": ["test_plain.py", "-p", "no:collab"],
            "plugin loaded, test unchanged": ["test_plain.py", f"--collab-out={tmp}/out"],
            "plugin + collab fixture + record()": ["test_fixture.py", f"--collab-out={tmp}/out"],
        }
        times = {name: [] for name in cases}
        for _ in range(args.repeats):  # interleaved, so drift hits every case alike
            for name, case_args in cases.items():
                times[name].append(run(folder, case_args))
    base = statistics.median(times["plain pytest (-p no:collab)"])
    print(f"{args.tests} tests, median of {args.repeats} runs (whole pytest process)")
    for name, values in times.items():
        med = statistics.median(values)
        per_test_ms = (med - base) / args.tests * 1e3
        print(f"  {name:38s} {med:6.2f} s  x{med / base:5.2f}  overhead {per_test_ms:+6.2f} ms/test")


if __name__ == "__main__":
    main()
