"""``split.run`` on the local lab: a cut inside a residual block (two tensors) reproduces
the unsplit model, baselines run, and bad input fails before any device starts."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).parent

TESTS = """
import numpy as np
import pytest
import torch
import toy_models

from pytest_collab import split

torch.set_num_threads(1)


@pytest.mark.devices(rpi=1, server=1)
def test_cut_inside_the_block(collab):
    torch.manual_seed(0)
    images = split.synthetic(8, (3, 16, 16), seed=0)
    row = split.run(collab, toy_models.SkipNet(), point="conv_a", encoding="fp32", inputs=images,
                    labels=np.arange(8) % 10, head_args=("--threads", "1"), lab_note="skip")
    assert row["boundary_tensors"] == 2 and row["tensor_encodings"] == "fp32,fp32"
    assert row["max_logit_error"] == 0 and row["top1_agreement"] == 1.0
    assert row["accuracy"] == row["accuracy_ref"]
    assert row["model"] == "SkipNet" and row["point"] == "conv_a" and row["lab_note"] == "skip"
    assert row["queries"] == 8 and len(row["t_start"]) == 8 and row["p50_ms"] > 0
    assert [p.name for p in collab.programs] == ["split_tail", "split_head"]


@pytest.mark.devices(rpi=1, server=1)
@pytest.mark.parametrize("point", ["full_offload", "on_device"])
def test_baselines(collab, point):
    torch.manual_seed(0)
    row = split.run(collab, toy_models.SkipNet(), point=point, encoding="fp32",
                    inputs=split.synthetic(4, (3, 16, 16), seed=1))
    assert row["top1_agreement"] == 1.0 and row["wire_encoding"] == ("raw" if point == "full_offload" else "none")
    assert (row["wire_bytes"] == 0) == (point == "on_device")


@pytest.mark.devices(rpi=1, server=1)
def test_bad_input_fails_before_any_device_starts(collab):
    images = split.synthetic(2, (3, 16, 16), seed=0)
    with pytest.raises(split.PointError, match="conv_z"):
        split.run(collab, toy_models.SkipNet(), point="conv_z", inputs=images)
    model = toy_models.DoubleNet()
    # node names as split.run sees them: the model behind its uint8 -> float preprocessing
    point = next(p.name for p in split.points(split.with_preprocess(model), images, nodes=True)
                 if any(t.dtype == "float64" for t in p.boundary))
    with pytest.raises(split.SplitError, match="float64"):
        split.run(collab, model, point=point, encoding="int8", inputs=images)
    assert collab.programs == []
"""


def test_split_run_on_the_local_lab(pytester: pytest.Pytester) -> None:
    shutil.copy(HERE / "toy_models.py", pytester.path / "toy_models.py")
    pytester.makepyfile(test_run=TESTS)
    out = pytester.path / "reports"
    result = pytester.runpytest("--lan=local", f"--collab-out={out}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    import pandas as pd

    rows = pd.read_parquet(next(out.rglob("results.parquet")))
    assert set(rows["point"]) == {"conv_a", "full_offload", "on_device"}
    for column in ("model", "encoding", "lab_note", "top1_agreement", "max_logit_error", "accuracy",
                   "boundary_bytes", "p50_ms", "p99_ms", "t_start"):
        assert column in rows.columns, column
