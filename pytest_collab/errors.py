"""One small error hierarchy: every message names the file, key or device and the fix.

The plugin turns a ``CollabError`` into a one-line red error (a usage error at
configuration time, a test failure at run time) instead of a traceback from deep
inside; that is why every message must stand on its own.
"""
from __future__ import annotations

import pytest


class CollabError(Exception):
    """Base of every error pytest-collab raises on purpose."""


class ProfileError(CollabError):
    """A LAN profile is missing, unreadable or invalid.

    ``path`` is the file and ``key`` the dotted key path (``devices[1].kind``).
    """

    def __init__(self, path: object, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + problem)


class OptionError(CollabError):
    """An option has a bad value; the message names where the value came from."""


class SelectionError(CollabError):
    """A ``devices`` constraint can not be met by the profile."""


class DeployError(CollabError):
    """A device program could not be started, got ready, or stopped."""


class ProgramFailed(DeployError):
    """A device program died or exited non-zero; carries its last output lines."""

    def __init__(self, name: str, device: str, message: str, tail: list[str] | None = None) -> None:
        self.name = name
        self.device = device
        self.tail = list(tail or [])
        text = f"program {name!r} on device {device!r}: {message}"
        if self.tail:
            text += "\n--- last output lines ---\n" + "\n".join(self.tail)
        super().__init__(text)


class TransportError(CollabError):
    """A device could not be reached (connect, auth, host key, timeout)."""

    def __init__(self, device: str, message: str) -> None:
        self.device = device
        super().__init__(f"device {device!r}: {message}")


class RunDataError(CollabError):
    """A run folder or its Parquet files are missing or unreadable."""


class CollabWarning(pytest.PytestWarning):
    """Something works, but not as the user probably meant (e.g. a world-readable key)."""
