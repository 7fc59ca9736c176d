"""The process runtime: the program runs as a plain process under the metrics wrapper.

On the local transport the code is used where it is and the device packages (the wrapper
and the device kit, :mod:`pytest_collab.runtime.shipping`) are symlinked. On a remote
device the test case folder and the device packages are synced once per run into
``<workdir>/<run-id>/``.
"""
from __future__ import annotations

import os
import posixpath
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_collab.runtime.shipping import device_packages, local_root, with_pythonpath
from pytest_collab.wrapper.meter import cli_args as meter_args

if TYPE_CHECKING:
    from pytest_collab.lan.profile import Device
    from pytest_collab.transport.base import Spawned, Transport


class ProcessRuntime:
    def __init__(self, device: "Device", transport: "Transport", run_id: str) -> None:
        self.device = device
        self.transport = transport
        self.run_id = run_id
        self.local = device.transport == "local"
        self._synced: dict[Path, str] = {}
        self._root = posixpath.join(device.workdir, run_id)
        self._packages_ready = False
        self._lock = threading.Lock()   # programs of one device may start side by side

    @property
    def python(self) -> str:
        return sys.executable if self.local else self.device.python

    def _ensure_packages(self) -> None:
        if self.local or self._packages_ready:
            return
        with self._lock:
            if not self._packages_ready:
                for name, folder in device_packages().items():
                    self.transport.sync(folder, posixpath.join(self._root, name))
                self._packages_ready = True

    def prepare(self, test_dir: Path) -> str:
        if self.local:
            return str(test_dir)
        self._ensure_packages()
        with self._lock:
            if test_dir not in self._synced:
                remote = posixpath.join(self._root, "cases", test_dir.name)
                self.transport.sync(test_dir, remote)
                self._synced[test_dir] = remote
            return self._synced[test_dir]

    def put(self, local: Path) -> str:
        if self.local:
            return str(local)
        remote = posixpath.join(self._root, "files", local.name)
        self.transport.put(local, remote)
        return remote

    def launch(self, argv: list[str], *, cwd: str, env: dict[str, str], hz: float,
               name: str) -> "Spawned":
        self._ensure_packages()
        root = str(local_root()) if self.local else self._root
        env = with_pythonpath(env, root, os.pathsep if self.local else ":")
        wrapper = [self.python, "-m", "collab_wrapper", *meter_args(self.device.power_meter), "--hz", f"{hz:g}"]
        # Over SSH a cut link gives the wrapper no EOF: heartbeats on its stdin instead.
        bound = 0.0 if self.local else float(getattr(self.transport, "link_timeout", 0) or 0)
        if not bound:
            return self.transport.spawn([*wrapper, "--", *argv], cwd=cwd, env=env)
        return self.transport.spawn([*wrapper, "--heartbeat", f"{bound:g}", "--", *argv], cwd=cwd,
                                    env=env, heartbeat=bound / 3)

    def close(self) -> None:
        pass


def create(device: "Device", transport: "Transport", run_id: str, **_options: object) -> ProcessRuntime:
    return ProcessRuntime(device, transport, run_id)
