"""How a command or a file reaches a device: one small interface, one module per transport.

Transports are imported lazily by name (``transport/<name>.py``), so a lab without SSH
devices never imports Fabric.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pytest_collab.errors import CollabError
from pytest_collab.transport.base import CommandResult, Spawned, Transport

if TYPE_CHECKING:
    from pytest_collab.lan.profile import Device

__all__ = ["CommandResult", "Spawned", "Transport", "get_transport", "KNOWN_TRANSPORTS"]

KNOWN_TRANSPORTS = ("local", "ssh")


def get_transport(device: "Device", **options: Any) -> Transport:
    """Return a transport for ``device`` (its module is imported only now)."""
    name = device.transport
    if name not in KNOWN_TRANSPORTS:
        raise CollabError(
            f"device {device.name!r}: unknown transport {name!r}; use one of {', '.join(KNOWN_TRANSPORTS)}"
        )
    module = importlib.import_module(f"pytest_collab.transport.{name}")
    return module.connect(device, **options)
