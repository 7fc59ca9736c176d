"""Real run folders for bundle/compare/replay tests, written with the project's own writers."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from pytest_collab.results.records import ResultsJournal, write_results_parquet
from pytest_collab.results.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
SECRET_ADDRESS = "10.77.0.7"
SECRET_USER = "alice-secret"
SECRET_KEY = "/home/alice-secret/.ssh/id_lab"


def write_run(path: Path, rows: list[dict[str, Any]], run_id: str = "20260101-000000-aaaaaa",
              testcase: str = "tiny", profile: str = "lab1", transport: str = "ssh") -> Path:
    """A run folder: results.parquet from ``rows`` (each with test + params + metrics), run.json."""
    run = RunDir(path)
    run.root.mkdir(parents=True, exist_ok=True)
    journal = run.root / "results.jsonl"
    tests: dict[str, Any] = {}
    counts: dict[str, int] = {}
    with ResultsJournal(journal) as j:
        for row in rows:
            test = f"testcases/{testcase}/test_tiny.py::{row.pop('test')}"
            params = row.pop("params", {})
            tests[test] = {"testcase": testcase, "params": params, "outcome": "passed",
                           "devices": {"rpi": ["rpi-1"]}, "selection": "rpi: rpi-1",
                           "programs": [{"name": "prog", "device": "rpi-1", "argv": ["/opt/x/prog.py"]}]}
            counts[test] = counts.get(test, 0) + 1
            j.append({"run": run_id, "test": test, "testcase": testcase, "record": counts[test] - 1,
                      "timestamp": 1767225600.0 + len(counts), **params, **row})
    write_results_parquet([journal], run.results)
    journal.unlink()
    device = {"name": "rpi-1", "kind": "rpi", "address": SECRET_ADDRESS, "transport": transport,
              "runtime": "process", "tags": ["edge"], "resources": {"cpus": 4},
              "ssh": {"user": SECRET_USER, "key": SECRET_KEY}}
    run.write_run_json({
        "run_id": run_id, "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:01:00+00:00",
        "argv": ["/home/alice-secret/venv/bin/pytest", "testcases/tiny"], "rootdir": "/home/alice-secret/proj",
        "profile": {"name": profile, "path": f"/home/alice-secret/proj/network_profiles/{profile}.yaml",
                    "devices": [device]},
        "tests": tests, "versions": {"python": "3.11.7", "pytest_collab": "0.1.0"},
        "git": {"commit": "0" * 40, "branch": "main", "dirty": False}, "workers": 0,
        "settings": {"lan": profile}, "images": {"tiny-runtime": "sha256:" + "ab" * 32},
    })
    return run.root


TINY_TEST = '''
import pytest


@pytest.mark.devices(rpi=1)
@pytest.mark.parametrize("n", [1, 2])
def test_tiny(collab, n):
    prog = collab.start("rpi", "prog.py", str(n))
    prog.wait(timeout=60)
    for row in prog.results():
        collab.record(**row)
'''
TINY_PROG = '''
import json, sys
n = int(sys.argv[1])
# deterministic: the same numbers on every run, so a replay compares like with like
print("COLLAB_RESULT " + json.dumps({"accuracy": 0.9 - 0.01 * n,
      "latency_ms": [10.0 + n + 0.1 * i for i in range(20)], "bytes_sent": 1000 * n}), flush=True)
'''


def tiny_project(root: Path) -> Path:
    """A project root with the root conftest, a pytest.ini and testcases/tiny."""
    case = root / "testcases" / "tiny"
    case.mkdir(parents=True)
    (root / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    (root / "pytest.ini").write_text("[pytest]\n")
    (case / "test_tiny.py").write_text(textwrap.dedent(TINY_TEST))
    (case / "prog.py").write_text(textwrap.dedent(TINY_PROG))
    return case


def run_pytest(root: Path, out: Path, *args: str) -> Path:
    """Run pytest in ``root`` (a real subprocess) and return the finished run folder."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           f"--collab-out={out}", *args], cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return (out / "latest").resolve()
