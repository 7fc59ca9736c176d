"""split_resnet: split inference between an edge device and a server, against its baselines.

The controller cuts the ResNet and exports head and tail; the server kind runs the tail
(ready once warmed up), the edge kind runs the head and the load, then prints one summary
that goes to results.parquet. Both device programs are the device kit's generic ones
(head_client.py and tail_server.py only name them). Matrix and options: conftest.py;
figures: report_sections.py.
"""
from __future__ import annotations

import math

import pytest

import inputs
import splitting

from pytest_collab.devicekit import codec
from pytest_collab.devicekit.artifact import read_sidecar, sidecar_path
from pytest_collab.devicekit.tail_service import READY_PATTERN

# fp32 joins head and tail without rounding; across processes oneDNN may still pick other
# kernels (thread counts), so allow float noise in the logits but no top-1 change.
FP32_MAX_ABS = 1e-3


def ship(collab, target: str, artifact) -> str:
    """Send an artifact and its JSON sidecar (if any) to the device; its path there."""
    sidecar = sidecar_path(artifact)
    if sidecar.is_file():
        collab.put(target, sidecar)
    return collab.put(target, artifact)


@pytest.mark.devices(rpi=1, server=1)
def test_split_resnet(collab, split_options, model, split, encoding, request):
    o = split_options
    transport = request.config.getoption("split_transport")
    art = splitting.export_split(model, split, o["artifacts"], o["weights"], o["seed"])
    images = inputs.load(o["samples"], o["seed"], o["data"])
    ref = splitting.reference_logits(model, images, o["batch"], o["artifacts"], o["weights"], o["seed"])
    if art.head is not None and art.tail is not None:  # a tensor the codec cannot carry fails here, not on a device
        codec.plan(read_sidecar(art.head).output_dtypes(), encoding)

    argv = ["--model", model, "--split", split, "--reference", ship(collab, "rpi", ref),
            "--inputs", ship(collab, "rpi", inputs.save(images, o["artifacts"])),
            "--batch", str(o["batch"]), "--seed", str(o["seed"]), "--mode", o["mode"],
            "--rate", str(o["rate"]), "--link-mbps", str(o["link_mbps"]),
            "--split-transport", transport]
    if encoding not in ("raw", "none"):
        argv += ["--encoding", encoding]
    if art.head is not None:
        argv += ["--artifact", ship(collab, "rpi", art.head)]
    server = None
    if art.tail is not None:
        bind = collab.devices["server"][0].address
        server = collab.start("server", "tail_server.py", "--artifact", ship(collab, "server", art.tail),
                              "--bind", bind,
                              "--port", "0", ready=READY_PATTERN)
        argv += ["--server", f"{server.address}:{server.match[1]}"]
    client = collab.start("rpi", "head_client.py", *argv, after=server)
    client.wait(timeout=600)

    rows = client.results()
    assert len(rows) == 1, f"head_client printed {len(rows)} COLLAB_RESULT lines, expected 1"
    row = rows[0]
    collab.record(**row)

    assert row["encoding"] == encoding and row["queries"] == o["samples"] // o["batch"]
    assert (row["wire_bytes"] == 0) == (split == "on_device")
    # what carried the tensors: forced, or what auto negotiated (a lab on one host: shm)
    assert row["transport"] in ({"none"} if split == "on_device" else {transport} - {"auto"} or {"grpc", "tcp", "shm"})
    assert math.isfinite(row["p50_ms"]) and row["lower_bound_ms"] > 0
    # the device's own clock: one [t_start, t_end] per query, in order, inside this test
    assert len(row["t_start"]) == len(row["t_end"]) == row["queries"]
    assert all(a <= b for a, b in zip(row["t_start"], row["t_end"])) and row["t_start"] == sorted(row["t_start"])
    if encoding in ("fp32", "raw", "none"):
        assert row["top1_agreement"] == 1.0
        assert row["max_abs_logit_error"] <= FP32_MAX_ABS
    if encoding in ("fp16", "int8"):
        assert row["compression_ratio"] > 1.0, "fp16/int8 must shrink the fp32 activation"
