"""split_plan choosing by energy, end to end on this machine: a local lab whose two devices
carry external meters (commands that print constant watts, docs/energy.md), and the same
objective on the plain local lab, which has no power source and must fail at once. Slow
(a profile pass per device and the measured cuts on two shared cores)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pd = pytest.importorskip("pandas")
pytest.importorskip("torchvision")

EDGE_W, SERVER_W = 3.0, 60.0
PLAN = ["testcases/split_plan", "--split-model", "mobilenet_v3_small", "--split-plan-input", "3,32,32",
        "--split-plan-samples", "10", "--split-plan-sweep", "5", "--split-plan-objective", "energy",
        "--split-plan-link-mbps", "1000", "--split-plan-rtt-ms", "0.5"]
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


def _pytest(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**__import__("os").environ, "PYTEST_COLLAB_SYSFS_ROOT": str(tmp / "no-sensors")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500, env=env)


def test_energy_objective_on_a_lab_without_power_fails_naming_the_devices(tmp_path: Path) -> None:
    done = _pytest(tmp_path, "--lan=local", *PLAN, f"--collab-out={tmp_path / 'reports'}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "rpi-1 (rpi), server-1 (server) report none" in done.stdout, done.stdout
    assert "power_meter" in done.stdout and "docs/energy.md" in done.stdout
    assert "profile_device" not in done.stdout      # failed before any profile pass


def test_plan_chooses_by_measured_board_energy(tmp_path: Path) -> None:
    profile = tmp_path / "metered-local.yaml"
    profile.write_text(PROFILE)
    out = tmp_path / "reports"
    done = _pytest(tmp_path, f"--lan={profile}", *PLAN, f"--collab-out={out}", "--split-plan-margin", "0.5")
    run = (out / "latest").resolve()
    assert (run / "results.parquet").is_file(), done.stdout + done.stderr
    assert done.returncode == 0, done.stdout[-3000:]
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
