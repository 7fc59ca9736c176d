"""Runtimes on one engine share its image checks and its info(); a changed case is a new image.

No engine needed: the engine is a stand-in that counts calls (the real deploys are in
tests/emulated/test_container_runtime.py and benchmarks/bench_deploy.py)."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from pytest_collab.lan.profile import Device
from pytest_collab.runtime import container
from pytest_collab.runtime.parallel import each


class FakeEngine:
    def __init__(self) -> None:
        self.info_calls = 0
        self.containers = self

    def list(self, **_filters):
        return []

    def info(self):
        self.info_calls += 1
        return {"NCPU": 2, "Architecture": "x86_64"}

    def close(self) -> None:
        pass


@pytest.fixture
def builds(monkeypatch):
    monkeypatch.setattr(container._Engines, "images", {})
    monkeypatch.setattr(container._Engines, "building", {})
    calls: list[str] = []
    lock = threading.Lock()

    def image_for(self, test_dir: Path) -> str:
        with lock:
            calls.append(self.device.name)
        time.sleep(0.2)                     # long enough for the other devices to arrive
        return f"case:{len(calls)}"

    monkeypatch.setattr(container.ContainerRuntime, "_image_for", image_for)
    return calls


def runtimes(engine: FakeEngine, n: int, transport: str = "local") -> list[container.ContainerRuntime]:
    return [container.create(Device(name=f"d{i}", kind="rpi", address=f"127.0.0.{i + 1}", transport=transport,
                                    runtime="docker"), None, "r", client=engine, progress=lambda line: None)
            for i in range(n)]


def test_devices_on_one_engine_check_the_image_once(tmp_path, builds) -> None:
    (tmp_path / "serve.py").write_text("print('x')\n")
    engine = FakeEngine()
    rts = runtimes(engine, 4)
    each(rts, lambda rt: rt.prepare(tmp_path))
    assert len(builds) == 1, "one device checks (or builds) the image, the others wait for it"
    assert {rt._image for rt in rts} == {"case:1"}
    assert engine.info_calls <= 1, "info() is asked once per engine, not per device"
    for rt in rts:
        rt.close()


def test_a_changed_case_or_another_engine_is_a_new_image(tmp_path, builds) -> None:
    (tmp_path / "serve.py").write_text("print('x')\n")
    engine = FakeEngine()
    runtimes(engine, 1)[0].prepare(tmp_path)
    runtimes(engine, 1)[0].prepare(tmp_path)
    assert len(builds) == 1
    (tmp_path / "serve.py").write_text("print('changed')\n")
    os.utime(tmp_path / "serve.py", ns=(1, 1))
    runtimes(engine, 1)[0].prepare(tmp_path)
    assert len(builds) == 2, "an edited test case is built (or looked up) again"
    remote = runtimes(FakeEngine(), 2, transport="ssh")   # each SSH device has its own engine
    each(remote, lambda rt: rt.prepare(tmp_path))
    assert len(builds) == 4
