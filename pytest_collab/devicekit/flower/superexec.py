"""Device program: a warm Flower SuperExec beside a SuperNode (ClientApps) or a SuperLink
(the ServerApp).

Why: with Flower's default ``--isolation subprocess`` the SuperNode launches a fresh
``flwr-clientapp`` process for every message, and each one imports torch (5-15 s on a
loaded 2-core box) to run 0.1-0.4 s of training. With ``--isolation process`` the
SuperNode (or SuperLink) only serves its Runtime API and waits for an external SuperExec
to take its tasks. This program is that SuperExec: Flower's own ``run_superexec`` loop
(tokens from the Runtime API, ``AutoExecPlugin``) with one executor swapped in. Instead
of ``Popen(["flwr-clientapp", "--token", T, ...])`` it forks this already-warm process
(flwr and the modules named by ``--warm`` imported once at start) and the child runs Flower's own
``flwr-clientapp`` (or ``flwr-serverapp``) entry point with those same arguments: still
one process per task, so a crashing app never takes the executor down.

Each forked task gets the measurement hooks of :mod:`.hooks` before Flower's entry point
runs. torch is imported only when ``--warm`` names it (the controller names it when the
app depends on it), so an app without torch never loads it.

Prints ``READY superexec apps=<apps> name=<name>`` once warm and the Runtime API accepts
connections.
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import sys
import time
import traceback
from typing import Any

from . import hooks
from ._launch import check_flower, flower_env

#: Always imported before the first task (Flower's CLI modules pull in
#: alembic/SQLAlchemy, 2-3 s on a loaded box); the app's own heavy modules come from
#: ``--warm`` (for torch: torch, torch.optim, torch._dynamo: 5 s).
WARM = ("flwr.app",)

#: Task kind -> (Flower TaskType value, module:function of the console script Flower
#: would start for it, more modules worth importing before the first task).
APPS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "clientapp": ("flwr-clientapp", "flwr.supernode.cli.flwr_clientapp:flwr_clientapp",
                  ("flwr.clientapp",)),
    "serverapp": ("flwr-serverapp", "flwr.superlink.cli.flwr_serverapp:flwr_serverapp",
                  ("flwr.serverapp", "flwr.serverapp.strategy")),
}


class ForkExecutor:
    """Flower ``Executor`` (``flwr.supercore.superexec.executor.types``) that forks the
    warm process for each task instead of starting a new interpreter."""

    def __init__(self, task_type: Any, entry: str, kind: str, device: str) -> None:
        self.task_type = task_type
        self.entry = entry
        self.kind = kind
        self.device = device
        self.children: set[int] = set()

    def get_eligible_capacity(self, supported_task_types: set, **_: object) -> tuple[set, set]:
        return supported_task_types & {self.task_type}, set()

    def wait_for_capacity(self, *_: object, **__: object) -> None:
        """Forking has no capacity gate."""

    def launch(self, spec: Any) -> Any:
        from flwr.supercore.superexec.executor import LaunchResult

        argv = [spec.task_type.value, "--runtime-api-address", spec.runtime_api_address,
                "--token", spec.token]  # what Flower's SubprocessExecutor would pass
        argv += ["--insecure"] if spec.insecure else (
            ["--root-certificates", spec.root_certificates_path]
            if spec.root_certificates_path else [])
        argv += ["--parent-pid", str(os.getpid())]
        sys.stdout.flush()
        sys.stderr.flush()  # or the child would print the parent's buffered lines again
        pid = os.fork()
        if pid == 0:
            _run_task(self.entry, argv, self.kind, self.device)  # never returns
        self.children.add(pid)
        print(f"superexec: task {spec.task_id} ({spec.task_type.value}) -> forked pid {pid}",
              flush=True)
        return LaunchResult.accepted()

    def reconcile(self) -> None:
        """Reap finished task processes (Flower's loop calls this between polls)."""
        for pid in list(self.children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.children.discard(pid)

    def close(self) -> None:
        """Nothing to release: a running task ends with its own Runtime API session."""


def _run_task(entry: str, argv: list[str], kind: str, device: str) -> None:
    """In the forked child: Flower's console-script function with ``argv``, then exit hard.

    ``os._exit`` so the child never unwinds into the parent's SuperExec loop (whose
    ``finally`` would close the parent's client) nor runs the parent's atexit hooks.
    """
    code = 1
    try:
        module, func = entry.split(":")
        hooks.install(kind, device)
        sys.argv = argv
        getattr(importlib.import_module(module), func)()
        code = 0
    except SystemExit as exc:  # flwr_exit() ends every task this way
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 -- report, then exit with failure
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def wait_port(address: str, timeout: float) -> bool:
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runtime-api", required=True,
                    help="Runtime API host:port of the SuperNode (clientapp) or SuperLink (serverapp)")
    ap.add_argument("--apps", choices=sorted(APPS), default="clientapp",
                    help="which tasks to run; default clientapp")
    ap.add_argument("--name", default=socket.gethostname(),
                    help="device name in the readiness line and the result rows")
    ap.add_argument("--warm", default="", help="comma-separated modules to import before the "
                    "first task (the app's heavy dependencies, e.g. torch,torch.optim)")
    a = ap.parse_args()
    check_flower()
    os.environ.update(flower_env(None))  # private FLWR_HOME (installed FABs), fast task poll
    task_value, entry, warm = APPS[a.apps]
    t0 = time.perf_counter()
    extra = tuple(m.strip() for m in a.warm.split(",") if m.strip())
    for mod in (*WARM, *warm, entry.split(":")[0]):
        importlib.import_module(mod)
    for mod in extra:  # names guessed from the app's dependencies: a miss only costs speed
        try:
            importlib.import_module(mod)
        except ImportError as exc:
            print(f"superexec: warm-up import of {mod!r} failed ({exc}); tasks import what "
                  f"the app needs themselves", file=sys.stderr, flush=True)
    if not wait_port(a.runtime_api, 60):
        print(f"{socket.gethostname()}: Runtime API {a.runtime_api} not reachable after 60 s; "
              "start the supernode / superlink first", file=sys.stderr, flush=True)
        return 1
    from flwr.supercore.constant import TaskType
    from flwr.supercore.superexec import run_superexec as flower_superexec

    executor = ForkExecutor(TaskType(task_value), entry, a.apps, a.name)
    # The one swap: Flower's loop asks get_executor() for its executor (subprocess or
    # kubernetes); ours forks this warm process instead of starting a new interpreter.
    flower_superexec.get_executor = lambda *_a, **_k: executor
    print(f"READY superexec apps={a.apps} name={a.name} warm_s={time.perf_counter() - t0:.1f}",
          flush=True)
    flower_superexec.run_superexec(runtime_api_address=a.runtime_api, insecure=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
