"""Streams over one SSH channel: a spawned remote process, and tar-based directory sync.

Kept apart from ``ssh.py`` so the connection logic stays readable. Only imported by it.
"""
from __future__ import annotations

import collections
import hashlib
import io
import shlex
import tarfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from pytest_collab.errors import TransportError
from pytest_collab.transport.base import sync_skips

if TYPE_CHECKING:
    from pytest_collab.transport.ssh import SSHTransport

STDERR_TAIL = 50
#: a sync's remote side may take this long plus one second per SYNC_MIN_RATE bytes
SYNC_BASE_S = 10.0
SYNC_MIN_RATE = 100_000


def _split_lines(recv: "Any") -> Iterator[str]:
    """Decoded lines (no newline, no trailing CR) of a channel stream read with ``recv``."""
    buffer = b""
    while True:
        data = recv(65536)
        if not data:
            break
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            yield raw.decode("utf-8", "replace").rstrip("\r")
    if buffer:
        yield buffer.decode("utf-8", "replace").rstrip("\r")

class SSHSpawned:
    """A remote process: stdout read line by line, stderr kept as a tail, stdin open.

    The remote shell prints ``PID_MARK<pid>`` on stderr before ``exec``; that pid leads
    the remote process group, which ``terminate``/``kill`` signal.
    """

    PID_MARK = "@collab-spawn-pid="

    def __init__(self, transport: "SSHTransport", chan: Any, command: str,
                 heartbeat: float | None = None) -> None:
        self.transport = transport
        self.chan = chan
        self.command = command
        self._stdin_closed = threading.Event()
        self.stderr_tail: list[str] = []
        self.pid: int | None = None
        self._pid_known = threading.Event()
        self._tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True,
                                               name=f"ssh-stderr-{transport.device.name}")
        self._stderr_thread.start()
        if heartbeat:
            threading.Thread(target=self._beat, args=(heartbeat,), daemon=True,
                             name=f"ssh-heartbeat-{transport.device.name}").start()

    @property
    def lost(self) -> str | None:
        """Why the link to the device died (None while it lives)."""
        return self.transport.lost

    def _beat(self, every: float) -> None:
        """A newline on the remote stdin every ``every`` s: the wrapper's proof we live."""
        while not self._stdin_closed.wait(every):
            if self.chan.closed:
                return
            try:
                if self.chan.send_ready():   # never block on a full window
                    self.chan.send(b"\n")
            except Exception:   # noqa: BLE001 - the link is gone; liveness reports it
                return

    def _drain_stderr(self) -> None:
        for line in _split_lines(self.chan.recv_stderr):
            self._stderr_line(line)
        self._pid_known.set()

    def _stderr_line(self, line: str) -> None:
        if self.pid is None and line.startswith(self.PID_MARK):
            try:
                self.pid = int(line[len(self.PID_MARK):])
            except ValueError:
                pass
            self._pid_known.set()
            return
        self._tail.append(line)
        self.stderr_tail[:] = list(self._tail)

    def lines(self) -> Iterator[str]:
        """Stdout lines (without the newline) until the remote process closes it."""
        yield from _split_lines(self.chan.recv)

    def poll(self) -> int | None:
        if not self.chan.exit_status_ready():
            if self.chan.closed:      # the connection dropped: no status will come
                return -1
            return None
        return self.chan.recv_exit_status()

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.05)
        # The exit status can overtake the last stderr bytes: let the drain finish, so
        # stderr_tail is complete when wait() returns (it ends at the channel's EOF).
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        self._stderr_thread.join(2.0 if left is None else min(left, 2.0))
        return code

    def close_stdin(self) -> None:
        """EOF on the remote process's stdin (the wrapper's dead man's switch)."""
        self._stdin_closed.set()
        try:
            self.chan.shutdown_write()
        except Exception:   # noqa: BLE001 - the link may already be gone
            pass

    def _signal(self, sig: str) -> None:
        # Even when the leader has exited, children may still run in its group.
        self._pid_known.wait(self.transport.timeout)
        if self.pid is not None:
            self.transport.signal_group(self.pid, sig)

    def terminate(self) -> None:
        """Graceful: close stdin, then SIGTERM to the remote process group."""
        self.close_stdin()
        self._signal("TERM")

    def kill(self) -> None:
        """Hard: SIGKILL to the remote process group, then drop the channel."""
        self.close_stdin()
        self._signal("KILL")
        self.wait(self.transport.timeout)
        self.chan.close()


# -- directory sync ------------------------------------------------------------------------
MANIFEST = ("cd {dir} 2>/dev/null && find . -type f -exec sha256sum {{}} + 2>/dev/null; true")


def local_manifest(root: Path) -> dict[str, str]:
    """relative posix path -> sha256 of every regular file under ``root``."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and not sync_skips(path.relative_to(root).parts):
            rel = path.relative_to(root).as_posix()
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def parse_manifest(text: str) -> dict[str, str]:
    """Parse ``sha256sum`` output of ``find .`` (``HASH  ./path``) into path -> hash."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        digest, _, name = line.partition("  ")
        if name.startswith("./"):
            out[name[2:]] = digest
    return out


def sync_timeout(size: int) -> float:
    """How long the remote side of a sync may take: a link slower than SYNC_MIN_RATE is
    as good as dead, and ``tar`` reading from a cut link must not wait forever."""
    return SYNC_BASE_S + size / SYNC_MIN_RATE


def sync_tar(transport: "SSHTransport", local_dir: Path, remote_dir: str) -> list[str]:
    """Mirror ``local_dir`` at ``remote_dir``: tar the changed files over one channel,
    delete remote files that are gone locally. Returns the paths sent.

    Bounded at both ends: the remote ``tar`` runs under ``timeout`` (``sync_timeout``),
    and a dead link closes the connection within ``link_timeout`` (``ssh_liveness``)."""
    if not local_dir.is_dir():
        raise TransportError(transport.device.name, f"sync: {local_dir} is not a folder")
    name = transport.device.name
    quoted = shlex.quote(remote_dir)
    listing = transport.run(MANIFEST.format(dir=quoted), timeout=120)
    if listing.error:
        raise TransportError(name, f"sync: can not list {remote_dir}: {listing.error}")
    remote = parse_manifest(listing.stdout)
    local = local_manifest(local_dir)
    changed = [p for p, digest in local.items() if remote.get(p) != digest]
    stale = [p for p in remote if p not in local and not sync_skips(tuple(p.split("/")))]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for rel in changed:
            tar.add(local_dir / rel, arcname=rel, recursive=False)
    script = f"mkdir -p {quoted} && tar -xf - -C {quoted}"
    if stale:
        script += " && cd " + quoted + " && rm -f -- " + " ".join(shlex.quote(p) for p in stale)
    data = buffer.getvalue()
    limit = sync_timeout(len(data))
    remote_script, _ = transport.wrap(script, timeout=limit)
    chan = transport._channel()
    try:
        chan.exec_command(remote_script)
        chan.sendall(data)
        chan.shutdown_write()
        err = chan.makefile_stderr("rb").read().decode("utf-8", "replace")
        code = chan.recv_exit_status()
    except Exception as exc:   # noqa: BLE001 - the link died under us (liveness closed it)
        raise TransportError(name, f"sync to {remote_dir} failed: "
                                   f"{transport.lost or f'connection lost ({exc})'}") from None
    finally:
        chan.close()
    if transport.lost:
        raise TransportError(name, f"sync to {remote_dir} failed: {transport.lost}")
    if code in (124, 137):
        raise TransportError(name, f"sync to {remote_dir} timed out after {limit:g} s "
                                   f"({len(data)} bytes; the link moved less than "
                                   f"{SYNC_MIN_RATE // 1000} kB/s)")
    if code != 0:
        raise TransportError(name, f"sync to {remote_dir} failed (exit {code}): {err.strip()}; "
                                   f"the device needs tar and sha256sum")
    return changed
