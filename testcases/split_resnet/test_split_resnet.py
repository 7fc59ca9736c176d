"""split_resnet: split inference of a ResNet between an edge device and a server, against
its baselines, as one user of the split library.

Each test is one ``split.run``: the library cuts the ResNet at the stage's graph point,
exports head and tail once (content-addressed under ``.artifacts/``, so a second run
exports nothing), starts the device kit's split_tail on the server kind and split_head on
the edge kind, and records the summary row. Matrix, stage names and options: conftest.py;
figures: report_sections.py.
"""
from __future__ import annotations

import math

import pytest

from pytest_collab import split

#: split name -> the library's cut point: the end of that module of the ResNet. ``stem``
#: ends at maxpool; layer1..layer4 (and any other module name) are cut points already.
STAGE_POINTS = {"stem": "maxpool"}

# fp32 joins head and tail without rounding; across processes oneDNN may still pick other
# kernels (thread counts), so allow float noise in the logits but no top-1 change.
FP32_MAX_ABS = 1e-3


@pytest.mark.devices(rpi=1, server=1)
def test_split_resnet(collab, split_options, network, images, model, split, encoding):
    o = split_options
    row = split_run(collab, network, images, o, split, encoding)

    assert row["encoding"] == encoding and row["queries"] == o["samples"] // o["batch"]
    assert (row["wire_bytes"] == 0) == (split == "on_device")
    # what carried the tensors: forced, or what auto negotiated (a lab on one host: shm)
    forced = {o["transport"]} - {"auto"}
    assert row["transport"] in ({"none"} if split == "on_device" else forced or {"grpc", "tcp", "shm"})
    assert math.isfinite(row["p50_ms"]) and row["lower_bound_ms"] > 0
    # the device's own clock: one [t_start, t_end] per query, in order, inside this test
    assert len(row["t_start"]) == len(row["t_end"]) == row["queries"]
    assert all(a <= b for a, b in zip(row["t_start"], row["t_end"])) and row["t_start"] == sorted(row["t_start"])
    if encoding in ("fp32", "raw", "none"):
        assert row["top1_agreement"] == 1.0
        assert row["max_abs_logit_error"] <= FP32_MAX_ABS
    if encoding in ("fp16", "int8"):
        assert row["compression_ratio"] > 1.0, "fp16/int8 must shrink the fp32 activation"


def split_run(collab, network, images, o, name: str, encoding: str) -> dict:
    """One measurement: the stage ``name`` as the library's cut point; recorded."""
    # ``split`` (a test parameter) shadows the module inside the test, hence this helper
    return split.run(collab, network, point=STAGE_POINTS.get(name, name), encoding=encoding, inputs=images,
                     batch=o["batch"], mode=o["mode"], rate=o["rate"], outdir=o["artifacts"],
                     head_args=("--seed", str(o["seed"]), "--link-mbps", str(o["link_mbps"]),
                                "--split-transport", o["transport"]))
