"""issue 4: ``split_resnet`` end to end on the emulated lab (torch on the devices).

The devices need torch only here, so the lab's torch layer (cached by content hash) is
added by this module: the session's lab is brought up again with ``torch_wheel`` and its
device containers are replaced by ones from the torch image (same addresses, same host
key, so SSH's known_hosts stays valid). Head and tail are ``torch.export`` artifacts made
on the controller by its torch and loaded by the devices' torch 2.13.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from emulated_helpers import relaunch, run_experiment, torch_wheel

@pytest.fixture(scope="module")
def torch_lab(lab, lab_client):
    return relaunch(lab, lab_client, torch_wheel=str(torch_wheel()))


def test_split_resnet_layer2_int8(torch_lab, tmp_path: Path) -> None:
    import pandas as pd

    # The head's device (rpi-1) sends the tensor: its shaped uplink is the link of the bound.
    # Given explicitly: the experiment's default reads the newest link_baseline under reports/,
    # whichever lab that ran on.
    rate = torch_lab.device("rpi-1").link["rate_mbit"]
    run = run_experiment("split_resnet", tmp_path, "--split-samples=4", f"--split-link-mbps={rate}",
                         "-k", "layer2-int8")
    [test] = json.loads((run / "run.json").read_text())["tests"].values()
    assert test["devices"] == {"rpi": ["rpi-1"], "server": ["server-1"]}
    [row] = pd.read_parquet(run / "results.parquet").to_dict("records")
    assert (row["model"], row["split"], row["encoding"]) == ("resnet18", "layer2", "int8")
    assert row["queries"] == 4 and len(row["latency_ms"]) == 4
    assert row["wire_bytes"] > 0 and row["compression_ratio"] > 1.0
    assert row["top1_agreement"] >= 0.75     # int8 may flip a near-tie of random weights, not most
    assert row["link_MBps"] == pytest.approx(rate / 8)
    # Not lower_bound <= p50: at 0.5 CPU the head's time swings 70-280 ms (CFS throttling), so
    # the sum of per-stage medians can exceed the end-to-end median.
    assert row["lower_bound_ms"] > row["head_ms_p50"] > 0 and row["tail_ms_p50"] > 0
