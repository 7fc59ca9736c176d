"""issue 18: model_distribution and parallel_inference end to end on the local lab.

Every "device" is this machine; the registry is Debian's docker-registry the experiment
starts on 127.0.0.1 (the local profile's controller address). ``tiny_cnn`` keeps the
export and the loads short; the emulated tests run the default mobilenet_v3_small.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services import missing

ROOT = Path(__file__).resolve().parents[1]


def run_local(testcase: str, out: Path, *args: str) -> Path:
    if shutil.which("docker-registry") is None:
        missing("docker-registry is not installed (apt-get install docker-registry)")
    done = subprocess.run([sys.executable, "-m", "pytest", f"testcases/{testcase}", "-p", "no:cacheprovider",
                           "-q", f"--collab-out={out}", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return (out / "latest").resolve()


def test_model_distribution_local(tmp_path: Path) -> None:
    import pandas as pd

    run = run_local("model_distribution", tmp_path, "--md-model=tiny_cnn", "--md-devices=2",
                    "--md-predictions=5")
    df = pd.read_parquet(run / "results.parquet")
    assert sorted(df["cache"]) == ["hit", "hit", "miss", "miss"] and df["device"].nunique() == 2
    assert list(df["how"]) == ["built" if c == "miss" else "pulled" for c in df["cache"]]
    assert df["bytes_pulled"].nunique() == 1 and (df["bytes_pulled"] > 0).all()
    assert (df["cold_start_s"] > df["load_s"]).all() and (df["throughput_ips"] > 0).all()
    assert not (run / "models").exists(), "fetched models must not land in the run folder"


def test_parallel_inference_local(tmp_path: Path) -> None:
    import pandas as pd

    run = run_local("parallel_inference", tmp_path, "--pi-model=tiny_cnn", "--pi-devices=1,2",
                    "--pi-inputs=12", "--collab-report=html")
    df = pd.read_parquet(run / "results.parquet").sort_values("n_devices")
    assert list(df["n_devices"]) == [1, 2]
    two = df.iloc[1]
    assert len(json.loads(two["devices"])) == 2 and two["aggregate_ips"] == pytest.approx(12 / two["wall_s"])
    html = (run / "report.html").read_text()
    assert ">parallel_inference</h2>" in html and "Data-parallel inference" in html
