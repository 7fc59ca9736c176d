"""How a device program runs: ``process`` (a plain process under the wrapper), later ``docker``.

A runtime turns "run this program of this test case on this device" into a
:class:`~pytest_collab.transport.base.Spawned` whose stdout speaks the wrapper protocol;
everything after that (readiness, logs, metrics, teardown) is the same for every runtime.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol

from pytest_collab.errors import CollabError

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_collab.lan.profile import Device
    from pytest_collab.transport.base import Spawned, Transport

KNOWN_RUNTIMES = ("process", "docker")


class Runtime(Protocol):
    device: "Device"

    def prepare(self, test_dir: "Path") -> str:
        """Make the test case's code available on the device; return its folder there."""

    def launch(self, argv: list[str], *, cwd: str, env: dict[str, str], hz: float,
               name: str) -> "Spawned":
        """Start ``argv`` (already resolved for the device) under the metrics wrapper."""

    def put(self, local: "Path") -> str:
        """Ship a file the programs need (an artifact); return its path on the device."""

    def close(self) -> None: ...


def get_runtime(device: "Device", transport: "Transport", run_id: str, **options: Any) -> Runtime:
    """Return the runtime named by the device (imported only now)."""
    name = getattr(device, "runtime", "process") or "process"
    if name not in KNOWN_RUNTIMES:
        raise CollabError(
            f"device {device.name!r}: unknown runtime {name!r}; use one of {', '.join(KNOWN_RUNTIMES)}"
        )
    module = importlib.import_module(f"pytest_collab.runtime.{'container' if name == 'docker' else name}")
    return module.create(device, transport, run_id, **options)
