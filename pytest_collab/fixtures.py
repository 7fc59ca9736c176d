"""The fixtures experiment authors use: ``collab``, ``collab_lan``, ``collab_devices``.

Thin on purpose: selection lives in ``select.py``, deployment in ``deploy.py``, storage in
``metrics.py``; the :class:`Collab` object only ties them to one test.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from pytest_collab.deploy import Port, Program, ProgramContext, Ready
from pytest_collab.deployment import Deployment, StartSpec
from pytest_collab.errors import CollabError, DeployError
from pytest_collab.secrets import redactor
from pytest_collab.session import get_session
from pytest_collab.testcase import testcase_name

if TYPE_CHECKING:
    from pytest_collab.lan.profile import LAN, Device
    from pytest_collab.session import CollabSession


#: ``collab.start(dev, "module:pkg.mod")`` runs ``python -m pkg.mod`` (a device-kit module).
MODULE_PREFIX = "module:"


class Collab:
    """One test's handle on the lab: its devices, its programs and its results."""

    def __init__(self, session: "CollabSession", request: pytest.FixtureRequest,
                 devices: dict[str, list["Device"]]) -> None:
        self._session = session
        self._node = request.node
        self.devices = devices
        self.lan: "LAN" = session.lan
        self.test_dir = Path(request.node.path).parent
        self.testcase = testcase_name(Path(request.node.path), session.rootdir)
        callspec = getattr(request.node, "callspec", None)
        self.params: dict[str, Any] = dict(callspec.params) if callspec else {}
        self._records = 0
        self._names: dict[str, int] = {}
        self._deployment = Deployment(session.settings["ready_timeout"], self._launch, self._launched)
        self._redact = redactor(request.config, session.lan.secret_env)

    # ------------------------------------------------------------ devices
    @property
    def run_dir(self) -> Path:
        return self._session.run_dir.root

    def device(self, target: "str | Device") -> "Device":
        """A selected kind/tag (its first device, or ``"rpi#2"``), a device name, or a Device."""
        if not isinstance(target, str):
            return target
        want, _, nth = target.partition("#")
        if want in self.devices:
            chosen = self.devices[want]
            index = int(nth or 1) - 1
            if not 0 <= index < len(chosen):
                raise CollabError(f"{target!r}: the test selected {len(chosen)} device(s) for {want!r}")
            return chosen[index]
        names = [d.name for d in self.lan.devices]
        if target in names:
            return self.lan.device(target)
        raise CollabError(
            f"{target!r} is neither a kind/tag of this test's devices marker "
            f"({', '.join(self.devices) or 'no marker'}) nor a device of profile {self.lan.name!r} "
            f"({', '.join(names)})"
        )

    @staticmethod
    def port(number: int) -> Port:
        """Readiness rule: the device accepts TCP connections on ``number``."""
        return Port(int(number))

    def put(self, target: "str | Device", local: "str | Path") -> str:
        """Ship a file (e.g. a model artifact) to a device; return its path there."""
        device = self.device(target)
        return self._session.runtime_for(device).put(Path(local).resolve())

    # ------------------------------------------------------------ programs
    def start(self, target: "str | Device", program: str, *args: Any, ready: Ready = None,
              after: "Program | list[Program] | None" = None, env: dict[str, str] | None = None,
              name: str | None = None, ready_timeout: float | None = None, wait: bool = True) -> Program:
        """Start ``program`` (relative to the test's folder) on a device.

        ``"module:<name>"`` runs ``python -m <name>`` instead: a module of the packages
        shipped to every device (e.g. ``"module:collab_devicekit.flower.superlink"``).

        It is launched once every program in ``after`` is ready; with a ``ready`` rule and
        ``wait`` (the default) this returns only once the program itself is ready, so
        ``.match`` holds what the readiness regex captured (e.g. a port).
        """
        spec = StartSpec(target, program, args, ready, env, name)
        return self._deployment.start(after=after, ready_timeout=ready_timeout, wait=wait,
                                      **self._resolve(spec))

    @staticmethod
    def spec(target: "str | Device", program: str, *args: Any, ready: Ready = None,
             env: dict[str, str] | None = None, name: str | None = None) -> StartSpec:
        """One program for :meth:`start_many`: ``start``'s arguments, not launched yet."""
        return StartSpec(target, program, args, ready, env, name)

    def start_many(self, specs: "list[StartSpec]", *, after: "Program | list[Program] | None" = None,
                   ready_timeout: float | None = None, wait: bool = True) -> list[Program]:
        """Start several programs side by side (``collab.spec(...)`` each), e.g. one per device.

        Each launch (code and image check, SSH exec or container start) waits on its
        device, so 8 devices cost about the slowest one, not 8 launches. ``after`` and
        ``wait`` mean what they mean for :meth:`start`; with ``wait`` this returns once
        every program is ready, and a program that dies first fails it at once.
        """
        resolved = [self._resolve(spec) for spec in specs]
        return self._deployment.start_many(resolved, after=after, ready_timeout=ready_timeout, wait=wait)

    def _resolve(self, spec: StartSpec) -> dict[str, Any]:
        """The launcher's arguments, checked and named here (on the caller's thread, in order)."""
        device = self.device(spec.target)
        program = spec.program
        module = _module_of(program)
        if module is None and not (self.test_dir / program).exists() and not program.startswith("-"):
            raise DeployError(f"program {program!r} not found in {self.test_dir}")
        base = spec.name or (module.rsplit(".", 1)[-1] if module else Path(program).stem)
        self._names[base] = self._names.get(base, 0) + 1
        unique = base if self._names[base] == 1 else f"{base}-{self._names[base]}"
        env = dict(spec.env or {})
        self._redact.learn(env)
        return {"device": device, "program": program, "args": tuple(spec.args), "ready": spec.ready,
                "env": env, "name": unique,
                "role": spec.target if isinstance(spec.target, str) else device.kind}

    def _launch(self, *, device: "Device", program: str, args: tuple[Any, ...], ready: Ready,
                env: dict[str, str], name: str, role: str) -> Program:
        """Prepare the device and launch (may run on several threads at once)."""
        module = _module_of(program)
        runtime = self._session.runtime_for(device)
        code_dir = runtime.prepare(self.test_dir)
        if module is not None:
            argv = [runtime.python, "-m", module, *map(str, args)]
        else:
            argv = [f"{code_dir}/{program}", *map(str, args)]
            if program.endswith(".py"):
                argv.insert(0, runtime.python)
        ctx = ProgramContext(run_id=self._session.run_id, test=self._node.nodeid,
                             log_dir=self._session.run_dir.logs_for(self._node.nodeid),
                             sink=self._session.metrics_sink, redact=self._redact,
                             on_result=self._session.program_printed)
        full_env = {"COLLAB_RUN_ID": self._session.run_id, "COLLAB_DEVICE": device.name,
                    "COLLAB_KIND": device.kind, "COLLAB_PROGRAM": name, **env}
        spawned = runtime.launch(argv, cwd=code_dir, env=full_env,
                                 hz=self._session.settings["hz"], name=name)
        return Program(name, device, role, argv, spawned, ctx, ready)

    def _launched(self, started: Program) -> None:
        """Bookkeeping of a launched program, on the test's thread and in start order."""
        self._session.live.add(started)
        self._session.publisher.program_started(started)
        info = self._session.test_info(self._node.nodeid)
        info.setdefault("programs", []).append({"name": started.name, "device": started.device.name,
                                                "argv": self._redact.value(started.argv)})

    def ship_code(self) -> None:
        """Before the test body, side by side on every selected device: sync the test case
        and the device packages (plain processes), or check (build, pull) the test case's
        image (containers). A failure is then a setup ERROR naming the device, and 8
        devices wait about as long as the slowest."""
        from pytest_collab.runtime.parallel import each

        chosen = {d.name: d for ds in self.devices.values() for d in ds}.values()
        each([self._session.runtime_for(d) for d in chosen], lambda r: r.prepare(self.test_dir),
             name="collab-prepare")

    @property
    def programs(self) -> list[Program]:
        return list(self._deployment.programs)

    def stop_all(self) -> list[str]:
        problems = self._deployment.stop_all()
        for program in self._deployment.programs:
            self._session.live.discard(program)
        return problems

    # ------------------------------------------------------------ results
    def record(self, **values: Any) -> None:
        """Store one row in results.parquet: run, test, the test's parameters, then ``values``."""
        for key, value in values.items():
            if key in self.params and _plain(self.params[key]) != _plain(value):
                raise CollabError(
                    f"record({key}=...) clashes with the test parameter {key!r} "
                    f"({self.params[key]!r} != {value!r}); use another name"
                )
        row: dict[str, Any] = {
            "run": self._session.run_id, "test": self._node.nodeid, "testcase": self.testcase,
            "record": self._records, "timestamp": time.time(),
        }
        row.update({k: _plain(v) for k, v in self.params.items()})
        row.update(self._session.provenance(self._node.nodeid, [d for ds in self.devices.values() for d in ds]))
        row.update(values)
        self._session.record_row(self._redact.value(row) if self._redact else row, values)
        self._records += 1


def _module_of(program: str) -> str | None:
    """``"module:pkg.mod"`` -> ``"pkg.mod"``; a file path -> None."""
    return program[len(MODULE_PREFIX):] if program.startswith(MODULE_PREFIX) else None


def _plain(value: Any) -> Any:
    """Parameters become columns: keep numbers, strings and bools, name everything else."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return getattr(value, "__name__", None) or str(value)


@pytest.fixture(scope="session")
def collab_lan(request: pytest.FixtureRequest) -> "LAN":
    """The LAN profile of this run (``--lan``)."""
    return get_session(request.config).lan


@pytest.fixture
def collab_devices(request: pytest.FixtureRequest) -> Iterator[dict[str, list["Device"]]]:
    """The devices the test's ``devices`` marker selected: kind/tag -> devices.

    They are leased for the test: all or none, atomically, released at teardown (after
    ``collab`` stopped the programs), so parallel workers and runs never share a device.
    """
    from pytest_collab import quarantine
    from pytest_collab.select import constraint_from_marker, describe

    session = get_session(request.config)
    marker = request.node.get_closest_marker("devices")
    if marker is None:
        yield {}
        return
    lease = session.lease(request.node.nodeid, constraint_from_marker(marker.args, marker.kwargs))
    runtimes: list[Any] = []
    try:
        info = session.test_info(request.node.nodeid)
        info["devices"] = {want: [d.name for d in ds] for want, ds in lease.selection.items()}
        info["selection"] = describe(lease.selection)
        info["lease_wait_s"] = round(lease.waited_s, 3)
        # Unreachable devices are a setup ERROR naming the device, not a failure later.
        chosen = list({d.name: d for ds in lease.selection.values() for d in ds}.values())
        runtimes = quarantine.connect(session, chosen, request.node.nodeid)
        yield lease.selection
    finally:
        quarantine.note_lost_links(request.config, runtimes, request.node.nodeid)
        lease.release()


@pytest.fixture
def collab(request: pytest.FixtureRequest, collab_devices: dict[str, list["Device"]]) -> Iterator[Collab]:
    """Start device programs in order, record results; every program is stopped afterwards."""
    session = get_session(request.config)
    handle = Collab(session, request, collab_devices)
    info = session.test_info(request.node.nodeid)
    info["params"] = {k: _plain(v) for k, v in handle.params.items()}
    info["testcase"] = handle.testcase
    try:
        handle.ship_code()
        yield handle
    finally:
        problems = handle.stop_all()
        if problems:
            raise DeployError("teardown could not stop every program:\n" + "\n".join(problems))
