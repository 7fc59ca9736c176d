"""The device kit's one-pass profiler on this machine: what its row says about a model.

A model with many parameters behind a cheap first step: an export lists every parameter
read before the first op, and the profiler must not count those reads as the first
segment's work (they cost the interpreter, not a compiled forward). The program's fixed
call cost is measured apart and left out of the segments.
"""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pytest_collab.devicekit import split_profile  # noqa: E402
from pytest_collab.split import models, profile  # noqa: E402


class Deep(torch.nn.Module):
    """48 small linear layers (96 parameter reads) over a flattened image."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Linear(3 * 8 * 8, 64)
        self.body = torch.nn.Sequential(*[torch.nn.Linear(64, 64) for _ in range(46)])
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(self.body(self.stem(x.flatten(1))))


@pytest.fixture(scope="module")
def row(tmp_path_factory):
    out = tmp_path_factory.mktemp("profile")
    images = np.random.default_rng(0).integers(0, 255, (12, 3, 8, 8), dtype=np.uint8)
    files = profile.prepare(models.with_preprocess(Deep().eval(), (0.5,) * 3, (0.25,) * 3), images, out,
                            names=["preprocess", "stem", "body"])
    assert files.probe is not None and files.probe.is_file()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        split_profile.main(["--model-artifact", str(files.full), "--cuts", str(files.cuts), "--inputs",
                            str(files.inputs), "--probe-artifact", str(files.probe), "--samples", "12",
                            "--encodings", "fp32", "--threads", "1"])
    [line] = [ln for ln in printed.getvalue().splitlines() if ln.startswith("COLLAB_RESULT ")]
    return json.loads(line.split(" ", 1)[1])


def test_parameter_reads_are_not_the_first_segments_work(row):
    segments = row["segments_ms"]
    assert row["points"] == ["preprocess", "stem", "body"] and len(segments) == 4
    # preprocess is one cast and one affine step: a small share of 48 linear layers' time
    # (counting the 96 parameter reads made it the largest segment)
    assert segments[0] < 0.25 * segments[2], segments


def test_call_cost_is_measured_and_left_out_of_the_segments(row):
    assert row["call_ms"] > 0 and row["module_call_ms"] > 0
    assert sum(row["segments_ms"]) == pytest.approx(row["forward_ms"] - row["module_call_ms"], rel=1e-6)
    # the plan adds it back once per program: on_device = call + all segments
    from pytest_collab.split.plan import DeviceProfile

    prof = DeviceProfile.from_row(row)
    assert prof.call_ms == row["call_ms"]
