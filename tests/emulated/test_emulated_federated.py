"""issue 5 on issue 4's lab: ``federated`` (and the brought Flower app of
``federated_bring_your_own``) end to end on the emulated lab, the test cases unchanged.

The devices need Flower, scikit-learn and torch here, so this module brings the session's
lab up again with Flower and scikit-learn added to ``emulation.packages`` (wheels
``pip download``-ed on the controller) and the torch CPU wheel as the torch layer, each
image tagged by content hash (a second session builds nothing); the device containers are
replaced by ones from that image (same addresses, same host key).
The server device runs the SuperLink and ``flwr run``; each Raspberry Pi class device
(0.5 CPU, 1 GiB) runs a SuperNode and its ClientApp executor, over the lab's bridge.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from emulated_helpers import relaunch, run_experiment, torch_wheel

# The controller's own pin (pyproject's fl extra): the devices run the same Flower.
FL_PACKAGES = ("flwr>=1.41,<1.42", "scikit-learn")


@pytest.fixture(scope="module")
def fl_lab(lab, lab_client):
    packages = [*(lab.emulation or {}).get("packages", ()), *FL_PACKAGES]
    return relaunch(lab, lab_client, packages=packages, torch_wheel=str(torch_wheel()))


def test_federated_two_rpi_clients(fl_lab, tmp_path: Path) -> None:
    import pandas as pd

    pytest.importorskip("flwr")  # the controller submits the app with its own Flower
    run = run_experiment("federated", tmp_path, "-k", "clients2-iid", "--fl-rounds=2")
    [test] = json.loads((run / "run.json").read_text())["tests"].values()
    assert test["devices"] == {"server": ["server-1"], "rpi": ["rpi-1", "rpi-2"]}
    results = pd.read_parquet(run / "results.parquet")
    rounds = results[results["kind"] == "round"]
    assert sorted(rounds["round"]) == [0, 1, 2]
    assert set(results.loc[results["kind"] == "client", "client"]) == {"rpi-1", "rpi-2"}
    # digits, 2 IID clients, 2 rounds: well above chance (0.1) even at 0.5 CPU per client
    assert rounds.loc[rounds["round"] == 2, "global_accuracy"].item() >= 0.8
    metrics = pd.read_parquet(run / "metrics.parquet")
    assert {"server-1", "rpi-1", "rpi-2"} <= set(metrics["device"])


def test_brought_flower_app_on_containers(fl_lab, tmp_path: Path) -> None:
    """The plain upstream-layout sklearn app (no torch) through pytest_collab.flower: the
    launchers come with the device kit, the app folder through collab.put."""
    import pandas as pd

    pytest.importorskip("flwr")
    run = run_experiment("federated_bring_your_own", tmp_path)
    results = pd.read_parquet(run / "results.parquet")
    rounds = results[results["kind"] == "round"]
    assert sorted(rounds["round"]) == [0, 1, 2]
    assert rounds.loc[rounds["round"] == 2, "server_accuracy"].item() >= 0.8
    clients = results[results["kind"] == "client"]
    assert set(clients["client"]) == {"rpi-1", "rpi-2"} and (clients["heavy_modules"] == "").all()
