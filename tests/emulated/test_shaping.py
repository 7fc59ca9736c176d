"""Shaping rules (pure) and, on this kernel, the refusal of a declared delay."""
from __future__ import annotations

import dataclasses

import pytest

from pytest_collab.labs import shaping


def test_script_rate_and_loss() -> None:
    text = shaping.script({"rate_mbit": 50, "loss_pct": 2})
    assert "tbf rate 50mbit burst 131072" in text
    assert "--probability 0.020000 -j DROP" in text
    assert "netem" not in text


def test_script_delay_puts_tbf_under_netem() -> None:
    text = shaping.script({"rate_mbit": 10, "delay_ms": 20, "jitter_ms": 5})
    assert "root handle 1: netem delay 20ms 5ms distribution normal" in text
    assert "parent 1: handle 2: tbf rate 10mbit" in text


def test_burst_holds_gso_packets_and_10ms() -> None:
    assert shaping.burst_bytes(10) == shaping.MIN_BURST_BYTES
    assert shaping.burst_bytes(1000) == 1_250_000


def test_declared_delay(lab, lab_client, device_image) -> None:
    """Where the kernel has netem the delay applies; where not, it is refused with the reason."""
    from pytest_collab.labs.emulated import container_name, netem_available, shape

    has_netem, answer = netem_available(lab_client, device_image)
    device = dataclasses.replace(lab.device("rpi-2"), link={"rate_mbit": 50, "delay_ms": 20})
    container = lab_client.containers.get(container_name(lab, device))
    try:
        if has_netem:
            assert "netem" in shape(lab_client, device, container, device_image)
            pytest.skip("the kernel has sch_netem: delay is measured by link_baseline on the lab")
        with pytest.raises(shaping.ShapingError, match="no sch_netem") as info:
            shape(lab_client, device, container, device_image)
        assert "rpi-2" in str(info.value) and "delay_ms=20" in str(info.value)
        assert answer.endswith(shaping.NETEM_UNKNOWN + ".")
    finally:
        shape(lab_client, lab.device("rpi-2"), container, device_image)  # the declared link again


def test_delay_measurement(lab_client, device_image) -> None:
    from pytest_collab.labs.emulated import netem_available

    has_netem, answer = netem_available(lab_client, device_image)
    if not has_netem:
        pytest.skip(f"no sch_netem in this kernel (tc: {answer!r}): links can not be delayed here")
    pytest.skip("delay is measured by testcases/link_baseline --lan=emulated where netem exists")
