"""Run any Flower app on the lab: SuperLink on the server, a SuperNode per client device.

Every Flower process is a device program of ``collab_devicekit.flower`` (shipped to
every device with the device kit), started in order: SuperLink; its warm ServerApp
executor and the SuperNodes once it is ready; each SuperNode's warm ClientApp executor
once that SuperNode is; the run (``flwr run`` of the shipped app archive) once all are.
While the run goes the controller watches the client programs: a client whose Flower
processes end is *lost*, named by device and node id, and the ``on_lost`` policy decides.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, Union

from pytest_collab.errors import CollabError
from pytest_collab.flower.app import FlowerApp, FlowerAppError, config_args, load_app, node_config_text
from pytest_collab.flower.result import FlowerRun, client_rows, round_rows

if TYPE_CHECKING:
    from pytest_collab.deploy import Program
    from pytest_collab.fixtures import Collab
    from pytest_collab.lan.profile import Device

KIT = "module:collab_devicekit.flower."
POLICIES = ("fail", "continue")
NodeConfig = Union[Mapping[str, Any], Callable[[int, int, "Device"], Mapping[str, Any]], None]
#: Seconds between the controller's looks at the run and the client programs.
WATCH_S = 0.2


class FlowerRunFailed(CollabError):
    """The Flower run did not complete; the message says why (Flower's, or the lost client)."""

    def __init__(self, result: FlowerRun) -> None:
        super().__init__(f"Flower run {result.run_id} {result.flower_status or result.status}: "
                         f"{result.error}")
        self.result = result


def _node_config(spec: NodeConfig, i: int, n: int, device: "Device") -> dict[str, Any]:
    base: dict[str, Any] = {"partition-id": i, "num-partitions": n}
    if spec is None:
        return base
    if callable(spec):
        return dict(spec(i, n, device))
    return {**base, **spec}


def _devices(collab: "Collab", spec: "str | Device | Sequence[str | Device]") -> list["Device"]:
    if isinstance(spec, str) and spec in collab.devices:
        return list(collab.devices[spec])
    if isinstance(spec, (list, tuple)):
        return [collab.device(d) for d in spec]
    return [collab.device(spec)]  # type: ignore[arg-type]


def run(collab: "Collab", app: "str | Path | FlowerApp", *, server: "str | Device" = "server",
        clients: "str | Device | Sequence[str | Device]" = "rpi", rounds: int | None = None,
        run_config: Mapping[str, Any] | None = None, node_config: NodeConfig = None,
        min_clients: int | None = None, on_lost: str = "fail", timeout: float = 600.0,
        warm: Sequence[str] | None = None, fleet_poll: float = 0.25, record: bool = True,
        check: bool = True) -> FlowerRun:
    """Run the Flower app at ``app`` across the lab and return what it measured.

    ``rounds`` sets the app's ``num-server-rounds``; ``run_config`` overrides other keys
    of ``[tool.flwr.app.config]`` (unknown keys are an error here). ``node_config`` is a
    dict added to each SuperNode's ``partition-id``/``num-partitions``, or a callable
    ``(index, count, device) -> dict`` giving the whole node config. ``on_lost``: ``fail``
    ends the run when a client is lost; ``continue`` goes on while ``min_clients``
    (default: all) remain. ``timeout`` bounds the run in seconds. ``warm`` names the
    modules the executors import up front (default: from the app's dependencies).
    Rows are recorded in results.parquet (``record``); ``check`` raises
    :class:`FlowerRunFailed` when the run did not complete.
    """
    spec = app if isinstance(app, FlowerApp) else load_app(app)
    if on_lost not in POLICIES:
        raise CollabError(f"on_lost={on_lost!r}: use one of {', '.join(POLICIES)}")
    config = dict(run_config or {})
    if rounds is not None:
        config["num-server-rounds"] = int(rounds)
    spec.check_run_config(config)
    server_dev = collab.device(server)
    devices = _devices(collab, clients)
    if not devices:
        raise CollabError(f"clients={clients!r} selects no device; check the devices marker")
    need = len(devices) if min_clients is None else int(min_clients)
    if not 1 <= need <= len(devices):
        raise CollabError(f"min_clients={min_clients}: between 1 and the {len(devices)} clients")
    warm_arg = ",".join(spec.warm_modules() if warm is None else warm)
    packed = spec.pack()
    try:
        archive = collab.put(server_dev, packed)
        return _run(collab, server_dev, devices, archive, config, node_config, need,
                    on_lost, timeout, warm_arg, fleet_poll, record, check)
    finally:  # the local lab reads the archive in place: remove it once the run is over
        shutil.rmtree(packed.parent, ignore_errors=True)


def _run(collab: "Collab", server_dev: "Device", devices: list["Device"],
         archive: str, config: dict[str, Any], node_config: NodeConfig, need: int,
         on_lost: str, timeout: float, warm_arg: str, fleet_poll: float, record: bool,
         check: bool) -> FlowerRun:
    """Start the programs in order, watch the run, collect and record its rows."""
    link = collab.start(server_dev, KIT + "superlink", "--host", server_dev.address,
                        ready=r"READY superlink port=(\d+)", name="superlink")
    assert link.match is not None
    addr = f"{link.address}:{link.match[1]}"
    server_exec = collab.start(server_dev, KIT + "superexec", "--runtime-api", addr, "--apps",
                               "serverapp", "--name", server_dev.name, "--warm", warm_arg,
                               ready=r"READY superexec", after=link, wait=False, name="serverapp")
    # side by side: N SuperNodes (and then N executors) start in about the time of one
    nodes = collab.start_many(
        [collab.spec(dev, KIT + "supernode", "--superlink", addr, "--node-config",
                     node_config_text(_node_config(node_config, i, len(devices), dev)),
                     "--name", dev.name, "--fleet-poll", fleet_poll,
                     ready=r"READY supernode name=\S+ port=(\d+)", name=f"supernode-{dev.name}")
         for i, dev in enumerate(devices)], after=link)
    # The Runtime API listens on the device's loopback: the executor runs on that device.
    execs = collab.start_many(
        [collab.spec(dev, KIT + "superexec", "--runtime-api", f"127.0.0.1:{node.match[1]}",
                     "--name", dev.name, "--warm", warm_arg, ready=r"READY superexec",
                     name=f"clientapp-{dev.name}")
         for dev, node in zip(devices, nodes) if node.match is not None], wait=False)
    args = [x for kv in config_args(config) for x in ("-c", kv)]
    t0 = time.monotonic()
    runner = collab.start(server_dev, KIT + "run_app", "--superlink", addr, "--app-archive",
                          archive, *args, after=[server_exec, *nodes, *execs], name="flwr-run")
    result = _watch(runner, [link, server_exec], list(zip(devices, nodes, execs)), need,
                    on_lost, timeout, t0)
    result.programs = {"superlink": link, "serverapp": server_exec, "run": runner,
                       **{f"supernode-{d.name}": n for d, n in zip(devices, nodes)},
                       **{f"clientapp-{d.name}": e for d, e in zip(devices, execs)}}
    if record:
        record_run(collab, result)
    if check and not result.ok:
        raise FlowerRunFailed(result)
    return result


def _collect(result: FlowerRun, runner: "Program", server_exec: "Program",
             execs: list["Program"]) -> None:
    server_rows = server_exec.results()
    rows = [r for e in execs for r in e.results()]
    result.rounds = round_rows(server_rows)
    result.clients = client_rows(rows)
    result.nodes = {int(r["node_id"]): r["client"] for r in result.clients}
    result.app_results = []  # read again in full: this runs at each loss and at the end
    for row in runner.results():
        if row.get("flower") in ("started", "run"):
            result.run_id = row.get("run_id", result.run_id)
            if row["flower"] == "run":
                result.flower_status = row.get("status")
                if row.get("error") and not result.error:
                    result.error = row["error"]
        elif "flower" not in row:
            result.app_results.append(row)


def _describe(program: "Program") -> str:
    if program.exit_signal:
        return f"{program.name} was killed by signal {program.exit_signal}"
    return f"{program.name} exited with code {program.exit_code}"


def _watch(runner: "Program", server_side: list["Program"],
           clients: list[tuple["Device", "Program", "Program"]], need: int, on_lost: str,
           timeout: float, t0: float) -> FlowerRun:
    """Follow the run until it ends, a lost client ends it by policy, or ``timeout``."""
    result = FlowerRun(status="failed")
    alive = {dev.name for dev, _, _ in clients}
    failure: str | None = None
    while not runner.finished:
        for prog in server_side:
            if prog.finished and failure is None:
                failure = (f"server side lost on {prog.device.name}: {_describe(prog)}; "
                           f"last lines: {' | '.join(prog.tail()[-5:])}")
        for dev, node, exe in clients:
            gone = [p for p in (node, exe) if p.finished]
            if dev.name not in alive or not gone:
                continue
            alive.discard(dev.name)
            _collect(result, runner, server_side[1], [c[2] for c in clients])
            ids = sorted({nid for nid, name in result.nodes.items() if name == dev.name})
            node_id = ids[0] if ids else None
            why = "; ".join(_describe(p) for p in gone)
            result.lost.append({"device": dev.name, "node_id": node_id, "why": why,
                                "after_s": time.monotonic() - t0})
            named = f"client {dev.name} (node id {node_id if node_id is not None else 'not yet known'})"
            if on_lost == "fail" or len(alive) < need:
                failure = failure or (
                    f"{named} lost: {why}; policy on_lost={on_lost!r} with min_clients={need} "
                    f"and {len(alive)} client(s) left, so the run stops")
        if failure is None and time.monotonic() - t0 > timeout:
            failure = f"run not finished after {timeout:g} s (timeout)"
        if failure is not None:
            break
        time.sleep(WATCH_S)
    if failure is not None:
        runner.stop(grace=2.0)
    else:
        runner.wait(timeout=30, check=False)
    result.run_time_s = time.monotonic() - t0
    _collect(result, runner, server_side[1], [c[2] for c in clients])
    if failure is not None:
        result.error = failure
    elif runner.exit_code == 0 and result.flower_status and "completed" in result.flower_status:
        result.status = "completed"
    elif not result.error:
        result.error = f"{_describe(runner)}; last lines: {' | '.join(runner.tail()[-10:])}"
    return result


def record_run(collab: "Collab", result: FlowerRun) -> None:
    """Round, client and run rows into results.parquet (``kind`` says which)."""
    for row in result.rounds:
        collab.record(kind="round", **row)
    for row in result.clients:
        collab.record(kind="client", **row)
    collab.record(**result.run_row())


__all__ = ["FlowerApp", "FlowerAppError", "FlowerRun", "FlowerRunFailed", "run", "record_run"]
