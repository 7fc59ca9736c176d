"""Labels on everything a run creates in docker, and the sweep that removes leftovers.

Every container, network and volume pytest-collab creates carries ``collab.run-id``,
``collab.owner`` (user@host), ``collab.test`` and ``collab.device``, plus the pid and
start time of the controller process. A crashed run (kill -9, power loss) can not clean
up after itself; the next session, or ``collab cleanup``, finds its objects by label and
removes those whose controller is gone. Objects of another host's controller are left
alone unless a run id is named: their liveness can not be judged from here.
"""
from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import docker

RUN_ID = "collab.run-id"
OWNER = "collab.owner"
TEST = "collab.test"
DEVICE = "collab.device"
PID = "collab.pid"
PID_START = "collab.pid-start"
#: What created the object: "program" (runtime/container.py) or "lab" (emulated.py).
ROLE = "collab.role"

Progress = Callable[[str], None]


def owner() -> str:
    """``user@host`` of this controller."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks (field 22 of /proc/PID/stat): pid reuse guard."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def labels(run_id: str, *, device: str = "", test: str = "", role: str = "program") -> dict[str, str]:
    """The labels of one object made by this process for ``run_id``."""
    pid = os.getpid()
    return {RUN_ID: run_id, OWNER: owner(), TEST: test, DEVICE: device, ROLE: role,
            PID: str(pid), PID_START: _start_time(pid)}


def run_alive(obj_labels: dict[str, str]) -> bool | None:
    """Whether the controller that made an object still runs; None when it is another host's."""
    if obj_labels.get(OWNER, "").rpartition("@")[2] != socket.gethostname():
        return None
    try:
        pid = int(obj_labels.get(PID, ""))
    except ValueError:
        return False
    return bool(_start_time(pid)) and _start_time(pid) == obj_labels.get(PID_START, "")


@dataclass
class SweepResult:
    removed: list[str] = field(default_factory=list)   # "container NAME (run RUN)"
    kept: list[str] = field(default_factory=list)      # alive or another host's
    problems: list[str] = field(default_factory=list)


def sweep(client: "docker.DockerClient", run_id: str | None = None, *, role: str | None = "program",
          progress: Progress = lambda line: None) -> SweepResult:
    """Remove collab containers (then networks) of ``run_id``, or of every run whose controller died.

    ``role`` limits the sweep to program containers (the default: an emulated lab that is
    up belongs to no run and must survive a test session's sweep); None sweeps all.
    """
    import docker.errors

    wanted = [f"{RUN_ID}={run_id}" if run_id else RUN_ID]
    if role:
        wanted.append(f"{ROLE}={role}")
    result = SweepResult()
    containers = [(f"container {c.name}", c.labels, lambda c=c: c.remove(force=True))
                  for c in client.containers.list(all=True, filters={"label": wanted})]
    networks = [(f"network {n.name}", n.attrs["Labels"], n.remove)
                for n in client.networks.list(filters={"label": wanted})]
    for name, labels, remove in containers + networks:  # containers first: they hold networks
        what = f"{name} (run {labels.get(RUN_ID)})"
        if run_id is None and run_alive(labels) is not False:
            result.kept.append(what)
            continue
        try:
            remove()
            result.removed.append(what)
            progress(f"removed {what}")
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            result.problems.append(f"{what}: {exc.explanation or exc}")
    return result
