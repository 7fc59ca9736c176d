"""The emulated lab: a profile's devices as containers with sshd, limits and shaped links."""
from __future__ import annotations

from pytest_collab.labs.emulated import LabError, Settings, down, netem_available, status, up
from pytest_collab.labs.shaping import ShapingError

__all__ = ["LabError", "Settings", "ShapingError", "down", "netem_available", "status", "up"]
