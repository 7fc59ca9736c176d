"""End to end on the local lab: link_baseline, then split_plan profiles both devices once,
predicts, measures the predicted best, its neighbours and the baselines; then
``collab split plan`` replans from that run. One run serves every check: its lab is the
local one with external meters on both devices (commands that print constant watts,
docs/energy.md), so the plan chooses by energy and the energy arithmetic is checked
exactly; the structure (neighbours, baselines, a best per link rate) is the latency
objective's too. The plain local lab has no power source and must fail at once. Slow
(a profile pass per device and the measured cuts on two shared cores)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pd = pytest.importorskip("pandas")
pytest.importorskip("torchvision")

EDGE_W, SERVER_W = 3.0, 60.0
ENERGY = ["--split-plan-objective", "energy"]
PLAN = ["testcases/split_plan", "--split-model", "mobilenet_v3_small", "--split-plan-input", "3,32,32",
        "--split-plan-samples", "10", "--split-plan-sweep", "5,100"]
METER = "while true; do echo {w}; sleep 0.05; done"   # a meter that streams its readings
PROFILE = f"""name: metered-local
controller: {{name: localhost, address: 127.0.0.1}}
defaults: {{transport: local, runtime: process}}
devices:
  - name: metered-server
    kind: server
    address: 127.0.0.1
    power_meter: {{command: "{METER.format(w=SERVER_W)}"}}
  - name: metered-rpi
    kind: rpi
    address: 127.0.0.1
    power_meter: {{command: "{METER.format(w=EDGE_W)}"}}
"""


def _pytest(tmp: Path, lan: str, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTEST_COLLAB_SYSFS_ROOT": str(tmp / "no-sensors")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--lan={lan}", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def test_without_a_link_measurement_the_plan_names_the_command(tmp_path: Path) -> None:
    done = _pytest(tmp_path, "local", *PLAN, f"--collab-out={tmp_path}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "no link measurement for lab profile" in done.stdout
    assert "pytest testcases/link_baseline --lan=local" in done.stdout


def test_energy_objective_on_a_lab_without_power_fails_naming_the_devices(tmp_path: Path) -> None:
    done = _pytest(tmp_path, "local", *PLAN, *ENERGY, "--split-plan-link-mbps", "1000",
                   f"--collab-out={tmp_path / 'reports'}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "rpi-1 (rpi), server-1 (server) report none" in done.stdout, done.stdout
    assert "power_meter" in done.stdout and "docs/energy.md" in done.stdout
    assert "profile_device" not in done.stdout      # failed before any profile pass


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("metered")
    profile = tmp / "metered-local.yaml"
    profile.write_text(PROFILE)
    out = tmp / "reports"
    link = _pytest(tmp, str(profile), "testcases/link_baseline", "--link-sizes=1,1024", f"--collab-out={out}",
                   "-k", "grpc")
    assert link.returncode == 0, link.stdout + link.stderr
    done = _pytest(tmp, str(profile), *PLAN, *ENERGY, f"--collab-out={out}", "--split-plan-margin", "0.5")
    run = (out / "latest").resolve()
    assert (run / "results.parquet").is_file(), done.stdout + done.stderr
    assert done.returncode == 0, done.stdout[-3000:]
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


def test_plan_chooses_by_measured_board_energy(run_dir: Path) -> None:
    run = run_dir
    df = pd.read_parquet(run / "results.parquet")
    df = df[df["testcase"] == "split_plan"]
    profiles = df[df["kind"] == "profile"].set_index("role")
    # a constant meter: the mean board power over each profile pass is exactly its reading
    assert profiles.loc["rpi", "power_w"] == pytest.approx(EDGE_W)
    assert profiles.loc["server", "power_w"] == pytest.approx(SERVER_W)
    predicted = df[(df["kind"] == "predicted") & (df["measured_link"] == True)]  # noqa: E712
    assert (predicted["objective"] == "energy").all()
    chosen = predicted[predicted["is_best"] == True]  # noqa: E712
    assert list(chosen["point"]) == [predicted.loc[predicted["predicted_j"].idxmin(), "point"]]
    server_s = (predicted["decode_ms"] + predicted["tail_ms"]) / 1e3
    expected = EDGE_W * predicted["predicted_ms"] / 1e3 + SERVER_W * server_s
    assert list(predicted["predicted_j"]) == pytest.approx(list(expected))
    measured = df[df["kind"] == "measured"].set_index("point")
    per_query = [sum(e - s for s, e in zip(t0, t1)) / len(t0) for t0, t1 in zip(measured["t_start"], measured["t_end"])]
    assert list(measured["measured_edge_j"]) == pytest.approx([EDGE_W * s for s in per_query], rel=1e-6)
    assert measured.loc["on_device", "measured_server_j"] == 0.0
    assert measured.loc["full_offload", "measured_server_j"] > 0.0
    [verdict] = df[df["kind"] == "verdict"].itertuples()
    assert verdict.objective == "energy"
    assert verdict.measured_best == min(measured.index, key=lambda p: measured.loc[p, "measured_j"])
    print(measured[["predicted_ms", "measured_ms", "predicted_j", "measured_j"]].to_string())
    print(f"predicted best {verdict.predicted_best}, measured best {verdict.measured_best}, "
          f"regret {verdict.regret:.1%}, median energy error {verdict.median_energy_error:.1%}")


def test_cli_replans_from_the_run(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_collab.cli import main

    assert main(["split", "plan", str(run_dir), "--link-mbps", "1,10000"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "link_baseline grpc" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == ["1", "10000"]
