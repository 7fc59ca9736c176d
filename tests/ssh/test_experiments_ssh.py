"""Experiments over SSH devices, end to end: real sshd servers on loopback, the real Fabric
transport, the wrapper synced to each device, metrics streamed back while programs run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_pytest(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def ssh_profile(ssh_lab, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sshprofile")
    # The "devices" are this machine behind sshd: their python is this venv's (grpcio, torch).
    return ssh_lab.write_profile(root / "lab.yaml", python=sys.executable, workdir=str(root / "devices"))


def test_link_baseline_over_ssh(ssh_profile: Path, tmp_path: Path) -> None:
    done = run_pytest(["testcases/link_baseline", f"--lan={ssh_profile}", "--link-sizes=1,256",
                       f"--collab-out={tmp_path}"])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    run = (tmp_path / "latest").resolve()
    import pandas as pd

    results = pd.read_parquet(run / "results.parquet")
    assert sorted(set(results["transport"])) == ["grpc", "tcp"] and len(results) == 4
    metrics = pd.read_parquet(run / "metrics.parquet")
    assert set(metrics["device"]) == {"dev0", "dev1"}       # server kind -> dev0, rpi -> dev1
    assert (metrics["metric"] == "cpu_percent").any()
    info = json.loads((run / "run.json").read_text())
    assert info["profile"]["name"] == "lab"
    assert all(t["devices"] == {"server": ["dev0"], "rpi": ["dev1"]} for t in info["tests"].values())
    # The code and the wrapper were synced into the device's per-run folder.
    device_root = ssh_profile.parent / "devices" / "dev1" / run.name
    assert (device_root / "cases" / "link_baseline" / "client.py").is_file()
    assert (device_root / "collab_wrapper" / "__main__.py").is_file()


def test_split_resnet_over_ssh(ssh_profile: Path, tmp_path: Path) -> None:
    pytest.importorskip("torchvision")
    done = run_pytest(["testcases/split_resnet", f"--lan={ssh_profile}", "--split-samples=4",
                       "-k", "layer2-int8", f"--collab-out={tmp_path}"])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    import pandas as pd

    run = (tmp_path / "latest").resolve()
    results = pd.read_parquet(run / "results.parquet")
    assert list(results["split"]) == ["layer2"] and list(results["encoding"]) == ["int8"]
    assert results["wire_bytes"].iloc[0] > 0
    # Artifacts travel one by one (collab.put), never with the code sync of hidden folders.
    device_root = ssh_profile.parent / "devices" / "dev1" / run.name
    assert (device_root / "cases" / "split_resnet" / "test_split_resnet.py").is_file()
    assert not (device_root / "cases" / "split_resnet" / ".artifacts").exists()
    assert any(p.suffix == ".pt2" for p in (device_root / "files").iterdir())


def test_dropped_device_errors_naming_it_then_is_quarantined(ssh_lab, ssh_profile: Path,
                                                             tmp_path: Path) -> None:
    """A device whose sshd is gone: the test errors with the device named (an infrastructure
    ERROR, not a FAIL); the next test that needs it errors at once; the session goes on."""
    import yaml

    doc = yaml.safe_load(ssh_profile.read_text())
    doc["devices"][1]["address"] = "127.0.1.13"          # nothing listens there (our test range)
    doc["devices"][1]["ssh"]["connect_timeout"] = 1.0
    broken = ssh_profile.with_name("broken.yaml")
    broken.write_text(yaml.safe_dump(doc))
    (broken.with_suffix(".known_hosts")).write_text(ssh_profile.with_suffix(".known_hosts").read_text())
    done = run_pytest(["testcases/link_baseline", f"--lan={broken}", "--link-sizes=1",
                       f"--collab-out={tmp_path}"], timeout=180)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "dev1" in done.stdout and "2 errors" in done.stdout, done.stdout[-3000:]
    assert "quarantined for the rest of this session" in done.stdout, done.stdout[-3000:]


def test_federated_over_ssh(ssh_lab, tmp_path: Path) -> None:
    """The same federated test case, unchanged, with its server and clients on SSH devices."""
    pytest.importorskip("flwr")
    profile = ssh_lab.write_profile(tmp_path / "fl.yaml", kinds=("server", "rpi", "rpi"),
                                    python=sys.executable, workdir=str(tmp_path / "devices"))
    done = run_pytest(["testcases/federated", f"--lan={profile}", "-k", "clients2-iid",
                       "--fl-rounds=2", f"--collab-out={tmp_path / 'out'}"])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    import pandas as pd

    run = (tmp_path / "out" / "latest").resolve()
    results = pd.read_parquet(run / "results.parquet")
    rounds = results[results["kind"] == "round"]
    assert sorted(rounds["round"]) == [0, 1, 2]
    assert set(results.loc[results["kind"] == "client", "client"]) == {"dev1", "dev2"}
    metrics = pd.read_parquet(run / "metrics.parquet")
    assert {"dev0", "dev1", "dev2"} <= set(metrics["device"])


def test_brought_flower_app_over_ssh(ssh_lab, tmp_path: Path) -> None:
    """A foreign Flower app (no framework imports) over SSH: the launchers reach the
    devices with the device kit, the app folder with collab.put; 2 rounds measured."""
    pytest.importorskip("flwr")
    pytest.importorskip("sklearn")
    profile = ssh_lab.write_profile(tmp_path / "byo.yaml", kinds=("server", "rpi", "rpi"),
                                    python=sys.executable, workdir=str(tmp_path / "devices"))
    done = run_pytest(["testcases/federated_bring_your_own", f"--lan={profile}",
                       f"--collab-out={tmp_path / 'out'}"])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    import pandas as pd

    run = (tmp_path / "out" / "latest").resolve()
    results = pd.read_parquet(run / "results.parquet")
    rounds = results[results["kind"] == "round"]
    assert sorted(rounds["round"]) == [0, 1, 2] and rounds["server_accuracy"].notna().all()
    clients = results[results["kind"] == "client"]
    assert set(clients["client"]) == {"dev1", "dev2"}
    assert (clients["bytes_sent"] > 0).all() and clients["node_id"].notna().all()
    # the app went to the server device through collab.put (the run's files), not with
    # the test case's folder; the launchers are device-kit modules
    [test] = json.loads((run / "run.json").read_text())["tests"].values()
    argv = {p["name"]: p["argv"] for p in test["programs"]}
    archive = argv["flwr-run"][argv["flwr-run"].index("--app-archive") + 1]
    assert archive.startswith(str(tmp_path / "devices")) and archive.endswith("/files/app.tar.gz")
    assert argv["superlink"][1:3] == ["-m", "collab_devicekit.flower.superlink"]
    [status] = results.loc[results["kind"] == "run", "flower_status"]
    assert "completed" in status
