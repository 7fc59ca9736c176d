"""The plugin's per-test overhead against plain pytest, measured side by side.

Run: ``.venv/bin/python benchmarks/bench_plugin.py [--tests 1000] [--repeats 7]``.

Whole-process wall time of one pytest run mixes a fixed cost (interpreter, imports, the
LAN profile, the run folder) with the per-test cost, and on a shared machine it swings
by a second or more between runs. So every case runs at two sizes (``--small`` and
``--tests`` empty tests), all runs of a round in a shuffled order, and the per-test cost
is the slope between the sizes, taken per round on the CPU time of the pytest process
(user + system, children included): a neighbour stretches wall time, hardly CPU time.
Prints medians with the min-max over rounds (per test: ms of CPU; fixed: the intercept,
s of CPU); ``--profile CASE`` instead runs one case
in this process under cProfile and lists pytest-collab's functions per test.
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = {
    "plain": "import pytest\n@pytest.mark.parametrize('i', range({n}))\ndef test_empty(i):\n    pass\n",
    "fixture": ("import pytest\n@pytest.mark.parametrize('i', range({n}))\n"
                "def test_collab(collab, i):\n    pass\n"),
    "record": ("import pytest\n@pytest.mark.parametrize('i', range({n}))\n"
               "def test_collab(collab, i):\n    collab.record(value=i)\n"),
    "lookalike": ("import pytest\n@pytest.mark.parametrize('i', range({n}))\n"
                  "def test_lookalike(lookalike, i):\n    pass\n"),
}
#: the same fixture shape as collab(request, collab_devices) with teardown, minus the lab:
#: what pytest itself charges per test for such a fixture (pytest 9 builds fixture
#: definitions per parametrized test), so the plugin's own share can be told apart
CONFTEST = """import pytest
@pytest.fixture
def lookalike_devices(request):
    return {}
@pytest.fixture
def lookalike(request, lookalike_devices):
    yield object()
"""
#: case -> (test file kind, extra pytest arguments; {out} is the run folder root)
CASES = {
    "plain pytest (-p no:collab)": ("plain", ["-p", "no:collab"]),
    "no plugin, look-alike fixture": ("lookalike", ["-p", "no:collab"]),
    "plugin loaded, test unchanged": ("plain", ["--collab-out={out}"]),
    "plugin + collab fixture": ("fixture", ["--collab-out={out}"]),
    "plugin + collab fixture + record()": ("record", ["--collab-out={out}"]),
}
BASE = "plain pytest (-p no:collab)"


def write_tests(folder: Path, sizes: list[int]) -> None:
    (folder / "conftest.py").write_text(CONFTEST)
    for kind, text in TESTS.items():
        for n in sizes:
            (folder / f"test_{kind}_{n}.py").write_text(text.format(n=n))


def pytest_args(folder: Path, case: str, n: int) -> list[str]:
    kind, extra = CASES[case]
    return ["-q", "-p", "no:cacheprovider", f"test_{kind}_{n}.py",
            *(a.format(out=folder / "out") for a in extra)]


def run(folder: Path, args: list[str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one pytest process; CPU from the children rusage."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=folder,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(done.stdout[-3000:] + done.stderr[-3000:])
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def spread(values: list[float], scale: float = 1.0, fmt: str = "{:+.3f}") -> str:
    """``median [min..max]`` of ``values`` times ``scale``."""
    med, lo, hi = (scale * statistics.median(values), scale * min(values), scale * max(values))
    return f"{fmt.format(med)} [{fmt.format(lo)}..{fmt.format(hi)}]"


def measure(args: argparse.Namespace) -> None:
    sizes = [args.small, args.tests]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_tests(folder, sizes)
        runs = [(case, n) for case in CASES for n in sizes]
        for case, n in runs:  # warm-up: .pyc files, page cache
            run(folder, pytest_args(folder, case, n))
        rng = random.Random(args.seed)
        cpu: dict[tuple[str, int], list[float]] = {r: [] for r in runs}
        wall: dict[tuple[str, int], list[float]] = {r: [] for r in runs}
        for _ in range(args.repeats):
            rng.shuffle(runs)  # every round in a new order: no case always follows another
            for case, n in runs:
                c, w = run(folder, pytest_args(folder, case, n))
                cpu[case, n].append(c)
                wall[case, n].append(w)
    span = args.tests - args.small
    slope = {case: [(big - small) / span for big, small in zip(cpu[case, args.tests],
                                                              cpu[case, args.small])]
             for case in CASES}
    print(f"{args.small} and {args.tests} empty tests per case, {args.repeats} rounds in shuffled "
          f"order; medians [min..max over rounds]; load: {os.getloadavg()[0]:.2f}")
    print(f"{'case':34s} {'CPU ms/test':>22s} {'vs plain':>9s} {'fixed CPU s':>11s} "
          f"{'vs plain':>9s} {'wall s @' + str(args.tests):>20s}")
    base = statistics.median(slope[BASE])
    base_fixed = statistics.median(cpu[BASE, args.small]) - base * args.small
    for case in CASES:  # differences of medians: one slow round can not move them
        per_test = statistics.median(slope[case])
        fixed = statistics.median(cpu[case, args.small]) - per_test * args.small
        print(f"{case:34s} {spread(slope[case], 1e3, '{:.3f}'):>22s} "
              f"{(per_test - base) * 1e3:+9.3f} {fixed:11.2f} {fixed - base_fixed:+9.2f} "
              f"{spread(wall[case, args.tests], 1.0, '{:.2f}'):>20s}")


def profile(args: argparse.Namespace) -> None:
    """One case in this process under cProfile: pytest-collab's functions, us per test."""
    import cProfile
    import pstats

    import pytest

    case = next(c for c in CASES if c.startswith(args.profile))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_tests(folder, [args.tests])
        os.chdir(folder)
        prof = cProfile.Profile()
        prof.runcall(pytest.main, pytest_args(folder, case, args.tests))
    stats = pstats.Stats(prof)
    rows = [(cum, calls, f"{Path(file).name}:{line}({name})")
            for (file, line, name), (_, calls, _, cum, _) in stats.stats.items()  # type: ignore[attr-defined]
            if "pytest_collab" in file]
    print(f"\n{case}: pytest-collab functions by cumulative time, per test "
          f"({args.tests} tests; profiler overhead included)")
    for cum, calls, where in sorted(rows, reverse=True)[:args.top]:
        print(f"  {cum / args.tests * 1e6:9.1f} us/test  {calls:7d} calls  {where}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=1000, help="the large size (default 1000)")
    parser.add_argument("--small", type=int, default=50, help="the small size (default 50)")
    parser.add_argument("--repeats", type=int, default=7, help="rounds (default 7)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", metavar="CASE", help="profile the case whose name starts so")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    profile(args) if args.profile else measure(args)


if __name__ == "__main__":
    main()
