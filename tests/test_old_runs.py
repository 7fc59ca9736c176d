"""Runs written before the metrics column ``role`` was renamed ``program`` still read.

A real run of the tiny experiment is turned into an old-style run (its metrics.parquet
and its raw-log headers say ``role``); the report, the exports, compare, a bundle made
from it and its replay, and the rebuild from raw logs all see ``program``.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from bundle_helpers import run_pytest, tiny_project
from pytest_collab.results.rundir import RunDir

pytest.importorskip("jinja2")


def _as_old_run(run: Path, out: Path) -> Path:
    """A copy of ``run`` as a version before the rename wrote it."""
    shutil.copytree(run, out)
    table = pq.read_table(out / "metrics.parquet")
    assert "program" in table.column_names and "role" not in table.column_names
    pq.write_table(table.rename_columns(["role" if n == "program" else n for n in table.column_names]),
                   out / "metrics.parquet")
    for log in (out / "logs").rglob("*.jsonl"):
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        for obj in lines:
            if obj.get("k") == "program":
                obj["role"] = obj.pop("program")
        log.write_text("".join(json.dumps(obj) + "\n" for obj in lines))
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(test case folder, a fresh run, the same run as an old version wrote it)."""
    src = tmp_path_factory.mktemp("src")
    case = tiny_project(src)
    run = run_pytest(src, src / "reports", "testcases/tiny")
    return case, run, _as_old_run(run, src / "old-run")


def test_old_metrics_read_with_a_program_column(runs: tuple[Path, Path, Path]) -> None:
    from pytest_collab.report.data import load_run
    from pytest_collab.results.energy import energy_per_program
    from pytest_collab.results.metrics import read_metrics

    _, fresh, old = runs
    frame = read_metrics(old)
    assert "role" not in frame.columns and set(frame["program"].astype(str)) == {"prog"}
    assert frame.equals(read_metrics(fresh))
    assert load_run(old).metrics.equals(frame)
    energy_per_program(frame)  # reads the program column (no power sensor here: no rows)


def test_report_and_exports_of_an_old_run_name_the_program(runs: tuple[Path, Path, Path]) -> None:
    from pytest_collab.report import export_run, render_report
    from pytest_collab.report.resources import summary
    from pytest_collab.results.metrics import read_metrics

    _, _, old = runs
    table = summary(read_metrics(old))
    assert table is not None and set(table["program"]) == {"prog"}
    html = render_report(old).read_text()
    assert "<th>program</th>" in html and "<td>prog</td>" in html  # the resource table
    (parquet,) = [p for p in export_run(old, "parquet") if p.name == "metrics.parquet"]
    assert "program" in pq.read_schema(parquet).names and "role" not in pq.read_schema(parquet).names
    (csv,) = [p for p in export_run(old, "csv") if p.name == "metrics.csv"]
    assert csv.read_text().splitlines()[0].split(",")[:4] == ["run", "test", "device", "program"]


def test_compare_bundle_and_replay_take_an_old_run(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    from pytest_collab.share.bundle import export_bundle
    from pytest_collab.share.compare import compare_runs
    from pytest_collab.share.replay import finish_replay, prepare_replay

    case, fresh, old = runs
    assert compare_runs(old, fresh).passed
    bundle = export_bundle(case, old, tmp_path / "old.collab.tar.gz")
    root = tmp_path / "colleague"
    root.mkdir()
    plan = prepare_replay(bundle, root)
    outcome = finish_replay(plan, run_pytest(root, root / "reports", *plan.args))
    assert outcome.passed and outcome.comparison.rows


def test_rebuild_from_old_raw_logs_names_the_program(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """`collab recover` of a run that crashed before the rename: its raw-log headers say role."""
    from pytest_collab.results.assemble import write_metrics
    from pytest_collab.results.metrics import read_metrics

    _, _, old = runs
    crashed = RunDir(shutil.copytree(old, tmp_path / "crashed"))
    crashed.metrics.unlink()
    path, rows, _ = write_metrics(crashed)
    rebuilt = read_metrics(crashed.root)
    assert rows == len(rebuilt) > 0 and set(rebuilt["program"].astype(str)) == {"prog"}
    assert set(rebuilt["device"].astype(str)) == {"rpi-1"}
