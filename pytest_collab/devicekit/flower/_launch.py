"""Shared plumbing of the Flower launchers (superlink, supernode, superexec, run_app).

Flower's processes are console scripts; each device program runs one as its child in
the same process group (so the metrics wrapper samples and ends the whole tree),
forwards SIGTERM/SIGINT to it, and prints a readiness line once its port accepts
connections.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import SUPPORTED, SUPPORTED_TEXT

#: Flower's SuperExec polls the Runtime API for tasks every second by default; every
#: message waits for that poll, so the lab's executors poll faster (loopback, cheap).
POLL_ENV = "FLWR_SUPEREXEC_TASK_POLL_INTERVAL"
POLL_S = 0.1


def check_flower() -> str:
    """The installed flwr version; exit with a clear message when it is missing or outside
    :data:`SUPPORTED` (the launchers patch Flower internals of that range)."""
    from importlib.metadata import PackageNotFoundError, version

    host = socket.gethostname()
    try:
        found = version("flwr")
    except PackageNotFoundError:
        sys.exit(f"{host}: flwr is not installed for {sys.executable}; install "
                 f"'{SUPPORTED_TEXT}' in the device's Python environment")
    parts = tuple(int(x) for x in found.split(".")[:2] if x.isdigit())
    if not SUPPORTED[0] <= parts < SUPPORTED[1]:
        sys.exit(f"{host}: flwr {found} is installed for {sys.executable}, but pytest-collab's "
                 f"Flower launchers support {SUPPORTED_TEXT} only (they replace Flower's task "
                 f"executor and poll sleeps); install '{SUPPORTED_TEXT}' on the device")
    return found


def flower_bin(name: str) -> str:
    """Path of a Flower console script: beside this interpreter first, then on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        sys.exit(f"{socket.gethostname()}: '{name}' not found beside {sys.executable} or on "
                 f"PATH; install flwr in the device's Python environment (pip install flwr)")
    return found


def flower_env(home: str | None) -> dict[str, str]:
    """Child environment: Flower scripts on PATH (the SuperLink spawns flower-superexec by
    name) and a private FLWR_HOME so runs never share state with ~/.flwr."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["FLWR_HOME"] = home or tempfile.mkdtemp(prefix="collab-flwr-")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault(POLL_ENV, str(POLL_S))
    return env


def free_port(host: str) -> int:
    """A port free on ``host`` now (Flower takes a fixed port, not 0)."""
    with socket.socket() as s:
        s.bind((host if host != "0.0.0.0" else "", 0))
        return int(s.getsockname()[1])


def connect_host(bind_host: str) -> str:
    return "127.0.0.1" if bind_host in ("0.0.0.0", "") else bind_host


def supervise(argv: list[str], env: dict[str, str], host: str, port: int, ready: str,
              timeout: float = 60.0) -> int:
    """Run ``argv``; print ``ready`` once ``host:port`` accepts; return the child's exit code."""
    child = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    deadline = time.monotonic() + timeout
    while True:
        if child.poll() is not None:
            print(f"{socket.gethostname()}: {Path(argv[0]).name} exited with {child.returncode} "
                  f"before port {port} opened; see its output above", file=sys.stderr, flush=True)
            return child.returncode or 1
        try:
            with socket.create_connection((connect_host(host), port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                child.terminate()
                print(f"{socket.gethostname()}: port {port} not open after {timeout:.0f}s",
                      file=sys.stderr, flush=True)
                return 1
            time.sleep(0.2)
    print(ready, flush=True)
    return child.wait()
