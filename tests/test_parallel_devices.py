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


# ---------------------------------------------------------------- starts side by side
class _Overlap:
    """Counts how many calls of each step are in flight; a call lingers (the artificial
    per-step delay of a network round trip) until ``expect`` calls entered that step or
    ``patience`` passed, so the peak is ``expect`` only if the steps really overlap."""

    def __init__(self, expect: int, patience: float = 0.5) -> None:
        self.expect, self.patience = expect, patience
        self.now: dict[str, int] = {}
        self.entered: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self._cond = threading.Condition()

    def step(self, name: str) -> None:
        with self._cond:
            self.entered[name] = self.entered.get(name, 0) + 1
            self.now[name] = self.now.get(name, 0) + 1
            self.peak[name] = max(self.peak.get(name, 0), self.now[name])
            self._cond.notify_all()
            self._cond.wait_for(lambda: self.entered[name] >= self.expect, self.patience)
            self.now[name] -= 1


class _FakeSpawned:
    """The wrapper's lines of a program that prints READY and runs until stopped."""

    def __init__(self, ready: bool = True) -> None:
        self.stderr_tail: list[str] = []
        self._ready = ready
        self._end = threading.Event()

    def lines(self):  # type: ignore[no-untyped-def]
        yield '{"k": "start", "t": 0, "v": 1, "pid": 1, "argv": [], "hz": 1, "units": {}}'
        if self._ready:
            yield '{"k": "out", "t": 0, "s": "stdout", "line": "READY"}'
        else:
            yield '{"k": "exit", "t": 0, "code": 3, "signal": null, "wall_s": 0}'
            return
        self._end.wait(30)
        yield '{"k": "exit", "t": 0, "code": 0, "signal": null, "wall_s": 0}'

    def poll(self) -> int | None:
        return 0 if self._end.is_set() else None

    def wait(self, timeout: float | None = None) -> int | None:
        return 0 if self._ready else 3

    def terminate(self) -> None:
        self._end.set()

    kill = terminate


class _SlowTransport:
    """An SSH device seen from the controller: every sync and spawn waits on the network."""

    def __init__(self, device, overlap: _Overlap, ready: bool = True) -> None:  # type: ignore[no-untyped-def]
        self.device, self.overlap, self.ready = device, overlap, ready
        self.synced: list[str] = []

    def sync(self, local_dir, remote_dir: str) -> None:  # type: ignore[no-untyped-def]
        self.synced.append(remote_dir)
        self.overlap.step(f"sync {len(self.synced)}")   # a device's syncs run in turn

    def spawn(self, argv, *, cwd, env, heartbeat=None):  # type: ignore[no-untyped-def]
        self.overlap.step("spawn")
        return _FakeSpawned(self.ready)


def _slow_lab(tmp_path, count: int, overlap: _Overlap, dies: int | None = None):  # type: ignore[no-untyped-def]
    from pytest_collab.deploy import Program, ProgramContext
    from pytest_collab.deployment import Deployment
    from pytest_collab.lan.profile import Device
    from pytest_collab.runtime.process import ProcessRuntime

    case = tmp_path / "case"
    case.mkdir(exist_ok=True)
    (case / "serve.py").write_text("print('READY')\n")
    ctx = ProgramContext(run_id="r", test="t", log_dir=tmp_path / "logs", sink=None)
    runtimes = {}
    for i in range(count):
        device = Device(name=f"dev{i}", kind="rpi", address=f"127.0.3.{i + 1}", transport="ssh")
        runtimes[device.name] = ProcessRuntime(device, _SlowTransport(device, overlap, ready=i != dies), "r")

    def launcher(*, device: str, ready: str) -> Program:
        rt = runtimes[device]
        code = rt.prepare(case)
        argv = ["python3", f"{code}/serve.py"]
        return Program(device, rt.device, "rpi", argv, rt.launch(argv, cwd=code, env={}, hz=1, name="serve"),
                       ctx, ready)

    return Deployment(30, launcher), runtimes


def test_start_many_overlaps_each_devices_sync_and_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    count = 6
    overlap = _Overlap(count)
    deployment, runtimes = _slow_lab(tmp_path, count, overlap)
    programs = deployment.start_many([{"device": name, "ready": r"^READY"} for name in runtimes])
    try:
        assert [p.device.name for p in programs] == list(runtimes), "programs keep the specs' order"
        assert all(p.ready for p in programs)
        # every device's sync and start was in flight at once: N devices cost ~1 step, not N
        assert overlap.peak == {"sync 1": count, "sync 2": count, "sync 3": count, "spawn": count}
        for rt in runtimes.values():   # the device packages and the case, each synced once
            synced = [path.rsplit("/r/", 1)[1] for path in rt.transport.synced]  # type: ignore[attr-defined]
            assert sorted(synced) == ["cases/case", "collab_devicekit", "collab_wrapper"]
    finally:
        assert deployment.stop_all() == []


def test_start_many_of_one_device_syncs_its_code_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    overlap = _Overlap(1, patience=0.05)
    deployment, runtimes = _slow_lab(tmp_path, 1, overlap)
    programs = deployment.start_many([{"device": "dev0", "ready": r"^READY"}] * 4)
    try:
        assert len(programs) == 4 and set(overlap.peak.values()) == {1}
        assert len(runtimes["dev0"].transport.synced) == 3  # type: ignore[attr-defined]
    finally:
        deployment.stop_all()


def test_start_many_fails_at_once_naming_the_program_that_died(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pytest_collab.errors import ProgramFailed

    deployment, runtimes = _slow_lab(tmp_path, 3, _Overlap(3), dies=2)
    specs = [{"device": "dev0", "ready": r"^NEVER"}, {"device": "dev1", "ready": r"^READY"},
             {"device": "dev2", "ready": r"^READY"}]
    # dev0 is never ready: a wait that looked only at it would end with its own timeout
    with pytest.raises(ProgramFailed, match="'dev2'.*exited with code 3 before it was ready"):
        deployment.start_many(specs, ready_timeout=20)
    assert [p.device.name for p in deployment.programs] == ["dev0", "dev1", "dev2"]
    assert deployment.stop_all() == []


def test_start_many_keeps_the_programs_that_started_when_a_launch_fails(tmp_path) -> None:  # type: ignore[no-untyped-def]
    deployment, runtimes = _slow_lab(tmp_path, 3, _Overlap(3, patience=0.05))
    launch = deployment._launcher

    def flaky(**spec):  # type: ignore[no-untyped-def]
        if spec["device"] == "dev1":
            raise TransportError("dev1", "exec channel refused")
        return launch(**spec)

    deployment._launcher = flaky
    with pytest.raises(TransportError, match="dev1"):
        deployment.start_many([{"device": n, "ready": r"^READY"} for n in runtimes])
    kept = deployment.programs
    assert [p.device.name for p in kept] == ["dev0", "dev2"], "started programs are stopped at teardown"
    assert deployment.stop_all() == [] and all(p.finished for p in kept)
