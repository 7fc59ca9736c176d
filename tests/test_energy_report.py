"""From a wrapper run over a fake board to the report's energy sections.

The wrapper really runs (twice, as two split configurations) with every source of
tests/fake_board.py; its lines go through the real MetricsWriter into metrics.parquet,
the inference windows into results.parquet, and the report is rendered from the files.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
from fake_board import WATTS, FakeBoard

from pytest_collab.report import energy as report_energy
from pytest_collab.report import render_report
from pytest_collab.report.sections import registered_sections
from pytest_collab.results import energy
from pytest_collab.results.metrics import MetricsWriter, read_metrics
from pytest_collab.results.records import ResultsJournal, read_results, write_results_parquet
from pytest_collab.results.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
RUN_ID = "20260102-030405-e7e7e7"
CONFIGS = [("layer2", "int8", 0.4), ("on_device", "raw", 0.8)]  # split, encoding, seconds of work


def wrapped(board: FakeBoard, seconds: float) -> List[Dict[str, Any]]:
    """The wrapper's lines for a program that marks an inference window of ``seconds``."""
    program = ("import time, json; time.sleep(0.3); t0 = time.time(); time.sleep(%r); "
               "print(json.dumps([t0, time.time()])); time.sleep(0.3)" % seconds)
    env = dict(os.environ, PYTEST_COLLAB_SYSFS_ROOT=str(board.root),
               PYTHONPATH=os.pathsep.join([str(ROOT), str(board.nvml_dir)]))
    meter = json.dumps({"command": str(board.meter), "period_s": 0.1})
    out = subprocess.run([sys.executable, "-m", "pytest_collab.wrapper", "--hz", "20", "--power-meter", meter, "--",
                          sys.executable, "-c", program], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, timeout=60, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    base = tmp_path_factory.mktemp("energy-run")
    board = FakeBoard(base / "board").drive()
    rundir = RunDir(base / RUN_ID)
    rundir.root.mkdir()
    journal = ResultsJournal(base / "journal.jsonl")
    try:
        with MetricsWriter(rundir.metrics) as writer:
            for split, encoding, seconds in CONFIGS:
                test = "testcases/split/test_split.py::test_split[%s-%s]" % (split, encoding)
                lines = wrapped(board, seconds)
                start = lines[0]
                writer.add_samples(run=RUN_ID, test=test, device="gpu-box", program="head", pid=start["pid"],
                                   samples=[o for o in lines if o["k"] == "m"], units=start["units"])
                t_start, t_end = json.loads(next(o["line"] for o in lines if o["k"] == "out"))
                journal.append({"run": RUN_ID, "test": test, "testcase": "split", "record": 0,
                                "split": split, "encoding": encoding, "queries": 10, "device": "gpu-box",
                                "t_start": t_start, "t_end": t_end})
    finally:
        board.stop()
        journal.close()
    write_results_parquet([journal.path], rundir.results)
    return rundir


def test_energy_per_inference_from_real_wrapper_lines(run: RunDir) -> None:
    metrics, results = read_metrics(run.root), read_results(run.root)
    table = energy.inference_energy(results, metrics)
    assert set(table["scope"]) == {"board"} and set(table["window"]) == {"marked"}
    # The meter has the board's wall power: it is the basis, 7.25 W constant.
    assert set(table["basis"]) == {"power_w.meter"}
    for (_, row), (_split, _enc, seconds) in zip(table.iterrows(), CONFIGS):
        assert row["j_per_inference"] == pytest.approx(7.25 * row["seconds"] / 10, rel=0.01)
        assert row["seconds"] == pytest.approx(seconds, abs=0.05)
    objective = energy.joules_per_inference(results, metrics)
    assert set(objective) == {("layer2", "int8"), ("on_device", "raw")}
    assert objective[("layer2", "int8")] < objective[("on_device", "raw")]
    assert energy.energy_objective(run.root) == objective  # the partitioner's entry point


def test_counters_over_a_run_match_the_driven_power(run: RunDir) -> None:
    """Without the meter and the input rail the basis is RAPL + GPU, from their counters."""
    metrics = read_metrics(run.root)
    metrics = metrics[~metrics["metric"].astype(str).isin(["power_w.meter", "power_w.VDD_IN"])]
    per_test = energy.energy_per_test(metrics)
    assert set(per_test["method"]) == {"counter"}
    assert set(per_test["basis"]) == {"power_w.rapl.package-0,power_w.rapl.package-0.dram,power_w.nvml.gpu0"}
    watts = WATTS["package"] + WATTS["dram"] + WATTS["gpu"]
    for _, row in per_test.iterrows():
        assert row["mean_w"] == pytest.approx(watts, rel=0.05)


def test_report_has_power_timeline_and_pareto_sections(run: RunDir) -> None:
    assert "Energy per inference" in [s.name for s in registered_sections()]
    html = render_report(run.root).read_text()
    for title in ("Power and energy per device", "Energy per inference"):
        assert ">%s</h2>" % title in html
    power = html[html.index(">Power and energy per device</h2>"):html.index(">Energy per inference</h2>")]
    assert len(re.findall(r'src="data:image/png;base64,', power)) == 1
    assert "board" in power and "power_w.meter" in power


def test_figures_draw_the_tests_and_the_front(run: RunDir) -> None:
    metrics, results = read_metrics(run.root), read_results(run.root)
    rows = energy.power_rows(metrics)
    fig = report_energy.timeline_figure(rows, energy.sample_windows(metrics, ["test", "device"]))
    assert fig is not None
    (ax,) = fig.axes
    assert len(ax.patches) == len(CONFIGS)  # one shaded span per test
    assert set(np.asarray(ax.lines[0].get_ydata(), dtype=float).round(3)) == {7.25}
    table = report_energy.per_inference(results, metrics)
    pareto = report_energy.pareto_figure(table, ["split", "encoding"])
    assert pareto is not None
    front = pareto.axes[0].lines[0]
    assert str(front.get_label()).startswith("Pareto front")
    # The int8 cut is both faster and cheaper: it alone is on the front.
    fast = table[table["split"] == "layer2"]["latency_ms"].iloc[0]
    assert np.asarray(front.get_xdata(), dtype=float).tolist() == [pytest.approx(fast)]


def test_a_run_without_power_says_so_in_the_report(tmp_path: Path) -> None:
    rundir = RunDir(tmp_path / RUN_ID)
    rundir.root.mkdir()
    with MetricsWriter(rundir.metrics) as writer:
        writer.add_sample(run=RUN_ID, test="t.py::test_a", device="vm", program="p", pid=1, t=1.8e9,
                          values={"cpu_percent": 5.0}, units={"cpu_percent": "%"})
    html = render_report(rundir.root).read_text()
    assert "no power recorded" in html
