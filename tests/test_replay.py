"""Replay: a bundle re-run with real pytest passes against its own baseline, fails a doctored one."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bundle_helpers import run_pytest, tiny_project
from pytest_collab.share.bundle import export_bundle
from pytest_collab.share.replay import finish_replay, prepare_replay, replay_lines


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real run of the tiny experiment, exported as a bundle."""
    src = tmp_path_factory.mktemp("src")
    case = tiny_project(src)
    run = run_pytest(src, src / "reports", "testcases/tiny")
    return export_bundle(case, run, src / "tiny.collab.tar.gz"), run


def _replay(bundle: Path, root: Path):
    plan = prepare_replay(bundle, root)
    assert plan.node_ids == ["testcases/tiny/test_tiny.py::test_tiny[1]", "testcases/tiny/test_tiny.py::test_tiny[2]"]
    run = run_pytest(root, root / "reports", *plan.args)
    return finish_replay(plan, run)


def test_replay_passes_against_its_own_baseline(baseline: tuple[Path, Path], tmp_path: Path) -> None:
    root = tmp_path / "colleague"
    root.mkdir()
    outcome = _replay(baseline[0], root)
    lines = replay_lines(outcome)
    assert outcome.passed, "\n".join(lines)
    assert lines[0].endswith(": PASS")
    assert "on profile local (virtual devices on one machine, local processes)" in lines[1]
    assert (root / "testcases" / "tiny" / "prog.py").is_file()
    info = json.loads((outcome.html.parent / "run.json").read_text())
    assert info["replay"]["passed"] and info["replay"]["baseline_lab"]["class"] == "local"
    assert "accuracy" in outcome.html.read_text()


def _doctor(run: Path, out: Path) -> Path:
    """A copy of ``run`` whose baseline accuracy was better and whose lab was real hardware."""
    out.mkdir()
    table = pq.read_table(run / "results.parquet")
    acc = table.column("accuracy").to_pylist()
    table = table.set_column(table.schema.get_field_index("accuracy"), "accuracy",
                             pa.array([a + 0.05 for a in acc]))
    pq.write_table(table, out / "results.parquet")
    info = json.loads((run / "run.json").read_text())
    info["profile"] = {"name": "lab1", "devices": [{"name": "rpi-1", "kind": "rpi", "transport": "ssh"}]}
    (out / "run.json").write_text(json.dumps(info))
    return out


def test_replay_fails_a_doctored_baseline_naming_the_metric(baseline: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, run = baseline
    doctored = export_bundle(run.parents[1] / "testcases" / "tiny",
                             _doctor(run, tmp_path / "doctored"), tmp_path / "doctored.collab.tar.gz")
    root = tmp_path / "ci"
    root.mkdir()
    outcome = _replay(doctored, root)
    lines = replay_lines(outcome)
    text = "\n".join(lines)
    assert not outcome.passed
    assert outcome.comparison.failed_metrics == ["accuracy"]
    assert lines[0].endswith("FAIL: regressed accuracy")
    assert "FAIL tiny::test_tiny.py::test_tiny[1]" in text and "accuracy: 0.94 -> 0.89" in text
    assert "baseline: run" in text and "on profile lab1 (ssh devices" in text
    assert "NOTE: different lab classes (ssh vs local)" in text
    assert "DIFFERENT lab classes" in outcome.html.read_text()


def test_cli_replay_exits_1_on_regression(baseline: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, run = baseline
    doctored = export_bundle(run.parents[1] / "testcases" / "tiny", _doctor(run, tmp_path / "d"),
                             tmp_path / "d.collab.tar.gz")
    root = tmp_path / "cli"
    tiny_project(root)  # same code already there: the import leaves it alone
    done = subprocess.run([sys.executable, "-m", "pytest_collab", "bundle", "replay", str(doctored),
                           "--root", str(root), "--out", str(root / "reports")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL: regressed accuracy" in done.stdout


def test_replay_names_options_that_differ_from_the_baseline() -> None:
    from pytest_collab.share.replay import option_changes

    base = {"--link-sizes": "1", "--mode": "a"}
    assert option_changes(base, dict(base)) == []
    assert option_changes(base, {}) == []  # a run that recorded none: nothing to say
    assert option_changes(base, {"--link-sizes": "16", "--mode": "a"}) == [
        "--link-sizes: baseline '1', replay '16'"]


def test_provenance_columns_neither_align_nor_diff_rows() -> None:
    """A replay at another commit, on another lab, still compares like with like."""
    import pandas as pd

    from pytest_collab.share.compare import compare_frames

    def frame(sha: str, device: str) -> pd.DataFrame:
        return pd.DataFrame([{"run": "r", "test": "testcases/t/test_t.py::test_t", "testcase": "t", "record": 0,
                              "timestamp": 0.0, "split": "layer1", "accuracy": 0.9, "device": device,
                              "arch": "x86_64", "git_sha": sha, "image_digest": None}])

    cmp = compare_frames(frame("a" * 40, "rpi-1"), {}, frame("b" * 40, "emu-rpi-1"), {})
    assert cmp.passed and not cmp.only_a and not cmp.only_b
    assert [m.metric for row in cmp.rows for m in row.metrics] == ["accuracy"]
