"""The local transport: a "device" that is this machine (the embedded ``local`` lab).

Every spawned process gets its own session, so a hard kill takes its whole process
group and nothing is left behind when the controller stops.
"""
from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from pytest_collab.transport.base import CommandResult, sync_skips

if TYPE_CHECKING:
    from pytest_collab.lan.profile import Device


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class LocalSpawned:
    """A local process whose stdout is read line by line; stdin is kept open as a lifeline."""

    def __init__(self, argv: list[str], cwd: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env={**os.environ, **env}, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            text=True, encoding="utf-8", errors="replace", bufsize=1,
        )
        self.pid = self.proc.pid
        self.stderr_tail: list[str] = []
        self._stderr: collections.deque[str] = collections.deque(maxlen=50)
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line.rstrip("\n"))
            self.stderr_tail = list(self._stderr)

    def lines(self) -> Iterator[str]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            yield line.rstrip("\n")
        self._stderr_thread.join(timeout=2)

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self) -> None:
        """Close the lifeline and ask the wrapper to end its tree."""
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        _killpg(self.pid, signal.SIGKILL)
        self.proc.wait()


class LocalTransport:
    """Runs commands and programs on this machine; paths are shared with the controller."""

    def __init__(self, device: "Device") -> None:
        self.device = device

    def run(self, command: str, *, timeout: float | None = None, env: dict[str, str] | None = None,
            cwd: str | None = None) -> CommandResult:
        start = time.monotonic()
        proc = subprocess.Popen(
            command, shell=True, cwd=cwd, env={**os.environ, **(env or {})}, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
            error = None
        except subprocess.TimeoutExpired:
            _killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            error = f"timed out after {timeout:g} s (the command and its children were killed)"
        return CommandResult(self.device.name, command, out, err, proc.returncode,
                             time.monotonic() - start, error)

    def put(self, local: Path, remote: str) -> None:
        if Path(local).resolve() != Path(remote).resolve():
            Path(remote).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(local, remote)

    def get(self, remote: str, local: Path) -> None:
        self.put(Path(remote), str(local))

    def sync(self, local_dir: Path, remote_dir: str) -> None:
        if Path(local_dir).resolve() != Path(remote_dir).resolve():
            shutil.copytree(local_dir, remote_dir, dirs_exist_ok=True,
                            ignore=lambda folder, names: [n for n in names if sync_skips((n,))])

    def spawn(self, argv: list[str], *, cwd: str, env: dict[str, str],
              heartbeat: float | None = None) -> LocalSpawned:
        """``heartbeat`` is not needed here: a local pipe always reaches EOF."""
        return LocalSpawned(argv, cwd, env)

    def close(self) -> None:
        pass


def connect(device: "Device", **_options: object) -> LocalTransport:
    return LocalTransport(device)
