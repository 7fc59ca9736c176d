"""split_any: any classification model, cut anywhere, between an edge device and a server.

Each test is one ``split.run``: the library exports the cut once, starts the device
kit's split_tail and split_head, and records the summary row (latency, bytes, fidelity;
held-out digits accuracy with ``--split-trained``). Matrix and options: conftest.py;
figures: report_sections.py.
"""
from __future__ import annotations

import math

import pytest

from pytest_collab import split


@pytest.mark.devices(rpi=1, server=1)
def test_split_any(collab, subject, point, encoding):
    row = split.run(collab, subject.model, point=point, encoding=encoding, inputs=subject.images,
                    labels=subject.labels, name=subject.name, trained_accuracy=subject.trained_accuracy)

    assert row["queries"] == len(subject.images)
    assert math.isfinite(row["p50_ms"]) and len(row["t_start"]) == row["queries"]
    assert (row["wire_bytes"] == 0) == (point == "on_device")
    if encoding == "fp32":
        assert row["top1_agreement"] == 1.0, "fp32 joins head and tail without rounding"
    if point not in ("full_offload", "on_device") and encoding in ("fp16", "int8"):
        assert row["compression_ratio"] > 1.0, "fp16/int8 must shrink the fp32 activation"
