"""issue 13: on the emulated lab, shaping rpi-1's uplink (the head's) to 5 and 100 Mbit/s
moves the cut the partitioner predicts and the cut that measures fastest.

For each rate: link_baseline measures the shaped link, split_plan profiles both devices,
plans with that link and measures the predicted best, its neighbours and the baselines.
The optimum may only move towards the device as the link slows (never towards offload),
in prediction and in measurement, and full offload's measured transfer must grow.
Needs the torch lab (as test_emulated_split_resnet.py) and takes several minutes.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from emulated_helpers import relaunch, run_experiment, torch_wheel

RATES = (5, 100)
TIE = 0.25
PLAN = ("--split-model=mobilenet_v3_small", "--split-plan-input=3,128,128", "--split-plan-samples=48",
        "--split-plan-margin=1.0", "--split-plan-sweep=5,100")
# The margin is wide on purpose: this test checks how the optimum moves with the link (below);
# whether the choice was right is split_plan's own check (tests/split/test_plan_local.py), and
# here the late cuts and on_device tie within a few ms (tbf lets small transfers burst).


@pytest.fixture(scope="module")
def torch_lab(lab, lab_client):
    return relaunch(lab, lab_client, torch_wheel=str(torch_wheel()))


def _plan_at(rate: float, tmp_path: Path) -> dict:
    import pandas as pd

    from pytest_collab.split.profile import link_from_rows

    link_run = run_experiment("link_baseline", tmp_path / f"link-{rate}", "--link-sizes=1,1024", "-k", "grpc")
    link = link_from_rows(pd.read_parquet(link_run / "results.parquet"))
    assert link is not None, f"link_baseline at {rate} Mbit/s gave no gRPC rows"
    run = run_experiment("split_plan", tmp_path / f"plan-{rate}", *PLAN,
                         f"--split-plan-link-mbps={link.mbps}", f"--split-plan-burst-kb={link.burst_bytes / 1024}")
    df = pd.read_parquet(run / "results.parquet")
    measured = df[df["kind"] == "measured"].set_index("point")
    [verdict] = df[df["kind"] == "verdict"].to_dict("records")
    print(f"{rate} Mbit/s (measured {link.mbps:.1f}, burst {link.burst_bytes / 1024:.0f} KiB): predicted best "
          f"{verdict['predicted_best']}, measured best {verdict['measured_best']}, "
          f"median |error| {verdict['median_error']:.1%}")
    return {"link": link, "measured": measured, "verdict": verdict,
            "pos": lambda point: int(measured.loc[point, "position"])}


def test_shaped_link_moves_the_optimum(torch_lab, lab_client, device_image, tmp_path: Path) -> None:
    from pytest_collab.labs.emulated import container_name, shape

    rpi = torch_lab.device("rpi-1")
    container = lab_client.containers.get(container_name(torch_lab, rpi))
    plans = {}
    try:
        for rate in RATES:
            shape(lab_client, dataclasses.replace(rpi, link={**rpi.link, "rate_mbit": rate}), container, device_image)
            plans[rate] = _plan_at(rate, tmp_path)
    finally:
        shape(lab_client, rpi, container, device_image)
    slow, fast = plans[min(RATES)], plans[max(RATES)]
    assert slow["link"].mbps < fast["link"].mbps / 5, "the shaping did not show in link_baseline"
    assert (slow["measured"].loc["full_offload", "transfer_ms_p50"]
            > fast["measured"].loc["full_offload", "transfer_ms_p50"]), "full offload's transfer did not grow"
    # Optima tie within noise (classifier.2 against on_device differ by a few kB on the wire
    # and one Linear of compute), so the claim, for the prediction and the measurement alike:
    # at the slow rate, the cuts at or beyond the fast rate's best are within TIE of the slow
    # rate's fastest; a cut nearer offload may not win clearly as the link slows.
    for best, column in (("predicted_best", "predicted_ms"), ("measured_best", "measured_ms")):
        measured, fast_best = slow["measured"], fast["verdict"][best]
        toward_device = measured[measured["position"] >= fast["pos"](fast_best)]
        assert toward_device[column].min() <= (1 + TIE) * measured[column].min(), (
            f"{best}: at {min(RATES)} Mbit/s {slow['verdict'][best]} beat every cut at or beyond {fast_best} "
            f"(the best at {max(RATES)} Mbit/s) by more than {TIE:.0%}:\n{measured[['position', column]]}")
