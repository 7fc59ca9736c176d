"""issue 18: model_distribution and parallel_inference end to end on the emulated lab.

The lab's torch layer is added as for split_resnet. The registry is Debian's
docker-registry started by the experiment on the lab's bridge gateway (an address of
this host), and the devices fetch the model from it over plain HTTP with the device kit.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from emulated_helpers import relaunch, run_experiment, torch_wheel


@pytest.fixture(scope="module")
def torch_lab(lab, lab_client):
    return relaunch(lab, lab_client, torch_wheel=str(torch_wheel()))


def _list(value):
    return json.loads(value) if isinstance(value, str) else list(value)


def test_model_distribution_on_two_devices(torch_lab, tmp_path: Path) -> None:
    import pandas as pd

    run = run_experiment("model_distribution", tmp_path, "--md-devices=2", "--md-predictions=5")
    df = pd.read_parquet(run / "results.parquet")
    assert sorted(df["cache"]) == ["hit", "hit", "miss", "miss"]
    assert df["device"].nunique() == 2
    assert all(torch_lab.device(name).address.startswith("172.28.") for name in df["device"])
    assert set(df["arch"]) == {"amd64"}                     # from the containers' facts
    assert list(df["how"]) == ["built" if c == "miss" else "pulled" for c in df["cache"]]
    # The same artifact everywhere: the same bytes reached every device.
    assert df["bytes_pulled"].nunique() == 1 and df["bytes_pulled"].iloc[0] > 1_000_000
    first = df["device"].iloc[0]
    miss, hit = (df[(df["device"] == first) & (df["cache"] == c)].iloc[0] for c in ("miss", "hit"))
    assert miss["build_s"] > 0 and miss["ensure_s"] > hit["ensure_s"]   # the export is the miss's cost
    assert (df["cold_start_s"] > df["ensure_s"] + df["load_s"]).all()
    assert (df["throughput_ips"] > 0).all() and (df["latency_p50_ms"] > 0).all()


def test_parallel_inference_one_and_two_devices(torch_lab, tmp_path: Path) -> None:
    import pandas as pd

    run = run_experiment("parallel_inference", tmp_path, "--pi-devices=1,2", "--pi-inputs=24",
                         "--collab-report", "html")
    df = pd.read_parquet(run / "results.parquet").sort_values("n_devices")
    assert list(df["n_devices"]) == [1, 2]
    for row in df.itertuples():
        devices = _list(row.devices)
        assert len(devices) == row.n_devices and len(_list(row.utilisation)) == row.n_devices
        assert all(0 < u <= 1.05 for u in _list(row.utilisation))
        assert row.straggler in devices and row.latency_p99_ms >= row.latency_p50_ms > 0
        assert row.aggregate_ips == pytest.approx(row.inputs / row.wall_s)
    html = (run / "report.html").read_text()
    assert ">parallel_inference</h2>" in html and "Traceback" not in html
