"""runtime.parallel.each: per-device steps overlap, keep their order, and fail per device."""
from __future__ import annotations

import threading
import time

import pytest

from pytest_collab.errors import TransportError
from pytest_collab.runtime.parallel import each


def test_steps_run_side_by_side_and_results_keep_order() -> None:
    barrier = threading.Barrier(6, timeout=10)   # only passes if all six steps run at once

    def step(i: int) -> int:
        barrier.wait()
        time.sleep(0.01 * (6 - i))               # finish in reverse order
        return i * i

    assert each(range(6), step) == [i * i for i in range(6)]


def test_every_step_finishes_and_every_failure_is_reported() -> None:
    done: list[int] = []
    failed: dict[int, str] = {}

    def step(i: int) -> int:
        time.sleep(0.05 if i == 3 else 0)
        done.append(i)
        if i in (1, 2):
            raise TransportError(f"dev{i}", "connection refused")
        return i

    with pytest.raises(TransportError, match="dev1"):    # the first in the devices' order
        each([0, 1, 2, 3], step, on_error=lambda i, exc: failed.setdefault(i, str(exc)))
    assert sorted(done) == [0, 1, 2, 3], "no device is left half way when another fails"
    assert set(failed) == {1, 2} and "dev2" in failed[2]


def test_one_device_runs_inline_and_reports_its_error() -> None:
    seen: list[int] = []
    assert each([5], lambda i: threading.current_thread() is threading.main_thread()) == [True]
    with pytest.raises(ValueError):
        each([7], lambda i: int("x"), on_error=lambda i, exc: seen.append(i))
    assert seen == [7] and each([], lambda i: i) == []


def test_connect_overlaps_devices_and_quarantines_each_failure() -> None:
    from types import SimpleNamespace

    from pytest_collab import quarantine
    from pytest_collab.lan.profile import Device

    barrier = threading.Barrier(4, timeout=10)   # the four connects must be in flight at once

    def runtime_for(device: Device) -> str:
        barrier.wait()
        if device.name in ("b", "d"):
            raise TransportError(device.name, f"can not connect to {device.address}")
        return f"runtime {device.name}"

    config = SimpleNamespace(stash=pytest.Stash())
    session = SimpleNamespace(lan=SimpleNamespace(emulated=False), config=config, runtime_for=runtime_for)
    devices = [Device(name=n, kind="rpi", address=f"127.0.0.{i + 2}") for i, n in enumerate("abcd")]
    with pytest.raises(TransportError, match="'b'"):
        quarantine.connect(session, devices, "t.py::test_x")   # type: ignore[arg-type]
    held = quarantine.book(config)                              # type: ignore[arg-type]
    assert sorted(held) == ["b", "d"]
    assert "127.0.0.5" in held["d"] and "first failure: t.py::test_x" in held["d"]
    with pytest.raises(TransportError, match="quarantined"):
        quarantine.connect(session, devices[2:], "t.py::test_y")  # type: ignore[arg-type]
