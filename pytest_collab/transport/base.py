"""The transport interface: run, copy, sync and spawn on one device."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Protocol

if TYPE_CHECKING:
    from pytest_collab.lan.profile import Device


def sync_skips(rel_parts: tuple[str, ...]) -> bool:
    """Files a code sync never ships: what :func:`pytest_collab.testcase.is_code` leaves out."""
    from pytest_collab.testcase import is_code

    return not is_code(rel_parts)


@dataclass
class CommandResult:
    """One command on one device; ``error`` is set when it could not run at all."""

    device: str
    command: str
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    duration_s: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_code == 0


class Spawned(Protocol):
    """A long-running process (the wrapper) whose stdout is read line by line."""

    stderr_tail: list[str]

    def lines(self) -> Iterator[str]: ...
    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int | None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...


class Transport(Protocol):
    device: "Device"

    def run(self, command: str, *, timeout: float | None = None, env: dict[str, str] | None = None,
            cwd: str | None = None) -> CommandResult: ...
    def put(self, local: Path, remote: str) -> None: ...
    def get(self, remote: str, local: Path) -> None: ...
    def sync(self, local_dir: Path, remote_dir: str) -> None: ...
    def spawn(self, argv: list[str], *, cwd: str, env: dict[str, str],
              heartbeat: float | None = None) -> Spawned: ...
    def close(self) -> None: ...
