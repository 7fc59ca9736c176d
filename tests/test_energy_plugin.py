"""Through the plugin: a profile's power_meter reaches the wrapper, and the run's files give
energy per inference; a device without any source says so once in its program's log."""
from __future__ import annotations

import textwrap

import pytest

from pytest_collab.results import energy

LAB = """
name: metered
devices:
  - {name: rpi-m, kind: rpi, power_meter: {command: "echo 'P=4.5W'", period_s: 0.1}}
  - {name: rpi-n, kind: rpi}
"""

PROGRAM = """
import json, sys, time
time.sleep(0.4)
t0 = time.time()
time.sleep(float(sys.argv[1]))
t1 = time.time()
print("COLLAB_RESULT " + json.dumps({"t_start": t0, "t_end": t1, "inferences": 10, "split": "s1",
                                     "encoding": "raw"}), flush=True)
time.sleep(0.3)
"""

EXPERIMENT = """
import pytest

@pytest.mark.devices(rpi=2)
def test_infer(collab):
    metered, bare = collab.devices["rpi"]
    for device in (metered, bare):
        p = collab.start(device, "infer.py", 1.0, name="infer")
        p.wait(timeout=60)
        collab.record(device=device.name, **p.results()[0])
"""


def test_profile_meter_gives_energy_per_inference(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", lab=textwrap.dedent(LAB))
    pytester.makepyfile(infer=PROGRAM, test_energy_run=EXPERIMENT)
    result = pytester.runpytest_subprocess("--lan=lab.yaml", "--collab-out=out", "--collab-hz=20")
    result.assert_outcomes(passed=1)
    run = next(p for p in (pytester.path / "out").iterdir() if p.name != "latest")
    import pandas as pd

    metrics = pd.read_parquet(run / "metrics.parquet")
    results = pd.read_parquet(run / "results.parquet")
    meter = metrics[metrics["metric"].astype(str) == "power_w.meter"]
    assert set(meter["device"].astype(str)) == {"rpi-m"} and set(meter["value"]) == {4.5}
    assert set(meter["unit"].astype(str)) == {"W"}
    table = energy.inference_energy(results, metrics)
    assert table["device"].tolist() == ["rpi-m"]  # the bare board has nothing to count
    row = table.iloc[0]
    assert row["scope"] == "board" and row["window"] == "marked"
    assert row["j_per_inference"] == pytest.approx(4.5 * row["seconds"] / 10, rel=0.02)
    assert energy.joules_per_inference(results, metrics) == {("s1", "raw"): pytest.approx(row["j_per_inference"])}
    logs = {p.name: p.read_text() for p in (run / "logs").rglob("*.log")}
    said = {name.split(".")[0]: text.count("collab_wrapper: no power sensor found") for name, text in logs.items()}
    assert said == {"rpi-m": 0, "rpi-n": 1}
