"""End to end on the local lab: link_baseline, then split_plan profiles both devices once,
predicts, measures the predicted best, its neighbours and the baselines; then
``collab split plan`` replans from that run. Slow (a few minutes on two shared cores)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pd = pytest.importorskip("pandas")
pytest.importorskip("torchvision")

PLAN = ["testcases/split_plan", "--split-model", "mobilenet_v3_small", "--split-plan-input", "3,32,32",
        "--split-plan-samples", "10", "--split-plan-sweep", "5,100"]


def _pytest(*args: str, timeout: float = 1500) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--lan=local", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_without_a_link_measurement_the_plan_names_the_command(tmp_path: Path) -> None:
    done = _pytest(*PLAN, f"--collab-out={tmp_path}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no link measurement for lab profile" in done.stdout
    assert "pytest testcases/link_baseline --lan=local" in done.stdout


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    link = _pytest("testcases/link_baseline", "--link-sizes=1,1024", f"--collab-out={out}", "-k", "grpc")
    assert link.returncode == 0, link.stdout + link.stderr
    done = _pytest(*PLAN, f"--collab-out={out}", "--split-plan-margin", "0.5")
    run = (out / "latest").resolve()
    assert (run / "results.parquet").is_file(), done.stdout + done.stderr
    return run


def test_plan_measures_best_neighbours_and_baselines(run_dir: Path) -> None:
    df = pd.read_parquet(run_dir / "results.parquet")
    df = df[df["testcase"] == "split_plan"]
    assert sorted(df[df["kind"] == "profile"]["role"]) == ["rpi", "server"]
    measured = df[df["kind"] == "measured"]
    points = list(measured["point"])
    assert {"full_offload", "on_device"} <= set(points) and len(points) >= 3
    assert measured["is_best"].sum() == 1
    assert (measured["measured_ms"] > 0).all() and (measured["predicted_ms"] > 0).all()
    assert list(measured["position"]) == sorted(measured["position"])
    predicted = df[df["kind"] == "predicted"]
    assert {5.0, 100.0} <= set(predicted["link_mbps"])
    assert (predicted.groupby("link_mbps")["is_best"].sum() == 1).all()
    [verdict] = df[df["kind"] == "verdict"].itertuples()
    print(f"predicted best {verdict.predicted_best}, measured best {verdict.measured_best}, regret "
          f"{verdict.regret:.1%}, median |error| {verdict.median_error:.1%}")
    print(measured[["point", "encoding", "predicted_ms", "measured_ms", "error"]].to_string())
    assert verdict.ok, f"the partitioner chose wrong by more than the margin: {verdict}"


def test_cli_replans_from_the_run(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_collab.cli import main

    assert main(["split", "plan", str(run_dir), "--link-mbps", "1,10000"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "link_baseline grpc" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == ["1", "10000"]
