"""A running container seen as a :class:`~pytest_collab.transport.base.Spawned`.

The controller holds the container's attach socket: stdout (the wrapper's JSON lines)
and stderr arrive multiplexed in 8-byte-header frames, and our half of stdin is the
wrapper's lifeline: the container is created with ``stdin_once``, so closing our side
(or this process dying, which closes the socket) is EOF for the wrapper, which then
ends the program's tree (the dead man's switch).
"""
from __future__ import annotations

import collections
import socket
import struct
import threading
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    import docker

STDERR_TAIL = 40
_HEADER = struct.Struct(">BxxxI")


def _raw(sock: Any) -> Any:
    """The real socket (unix/TCP) or paramiko channel under the SDK's wrapper."""
    return getattr(sock, "_sock", sock)


def demux(recv: "Any") -> Iterator[tuple[int, bytes]]:
    """(stream, payload) frames from ``recv(n) -> bytes`` until EOF (1 stdout, 2 stderr)."""
    buf = b""
    while True:
        while len(buf) >= _HEADER.size:
            kind, size = _HEADER.unpack_from(buf)
            if len(buf) < _HEADER.size + size:
                break
            yield kind, buf[_HEADER.size:_HEADER.size + size]
            buf = buf[_HEADER.size + size:]
        try:
            chunk = recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            return
        buf += chunk


class ContainerSpawned:
    """The wrapper running as a container's entrypoint; removed once its exit code is known."""

    def __init__(self, client: "docker.DockerClient", container_id: str, sock: Any,
                 name: str, grace: float = 5.0) -> None:
        self.client = client
        self.id = container_id
        self.name = name
        self.grace = grace
        self.stderr_tail: list[str] = []
        self._tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self._sock = sock
        self._raw = _raw(sock)
        self._code: int | None = None
        self._gone = False
        self._stdin_closed = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ output
    def lines(self) -> Iterator[str]:
        """The container's stdout line by line; stderr goes to ``stderr_tail``."""
        pending = {1: b"", 2: b""}
        for kind, payload in demux(self._raw.recv):
            pending[kind] = pending.get(kind, b"") + payload
            *complete, pending[kind] = pending[kind].split(b"\n")
            for raw in complete:
                text = raw.decode("utf-8", "replace").rstrip("\r")
                if kind == 1:
                    yield text
                else:
                    self._stderr(text)
        if pending.get(1):
            yield pending[1].decode("utf-8", "replace")
        if pending.get(2):
            self._stderr(pending[2].decode("utf-8", "replace"))

    def _stderr(self, text: str) -> None:
        self._tail.append(text)
        self.stderr_tail = list(self._tail)

    # ------------------------------------------------------------------ state
    def poll(self) -> int | None:
        if self._code is not None or self._gone:
            return self._code
        import docker.errors

        try:
            state = self.client.api.inspect_container(self.id)["State"]
        except docker.errors.NotFound:
            self._gone = True
            return self._code
        if state.get("Running") or state.get("Status") == "created":
            return None
        self._code = int(state.get("ExitCode", 0))
        return self._code

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code once the container ended (then it is removed); None on timeout."""
        import docker.errors
        import requests.exceptions

        if self._code is None and not self._gone:
            try:
                status = self.client.api.wait(self.id, timeout=timeout)
                self._code = int(status.get("StatusCode", 0))
            except (requests.exceptions.ConnectionError, requests.exceptions.ReadTimeout):
                return self.poll()
            except docker.errors.NotFound:
                self._gone = True
        self._remove()
        return self._code

    # ------------------------------------------------------------------ ending
    def close_stdin(self) -> None:
        """EOF on the wrapper's stdin: it ends the program's tree with its own grace."""
        with self._lock:
            if self._stdin_closed:
                return
            self._stdin_closed = True
        try:
            if hasattr(self._raw, "shutdown_write"):   # paramiko channel (ssh:// engine)
                self._raw.shutdown_write()
            else:
                self._raw.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def terminate(self) -> None:
        """Graceful: stdin EOF and SIGTERM to the wrapper; docker kills after the grace."""
        self.close_stdin()
        threading.Thread(target=self._stop, name=f"collab-stop-{self.name}", daemon=True).start()

    def _stop(self) -> None:
        import docker.errors

        try:
            self.client.api.stop(self.id, timeout=int(self.grace + 0.999))
        except docker.errors.APIError:
            pass  # already gone or stopping

    def kill(self) -> None:
        """Hard: SIGKILL and remove the container (its whole process tree dies with it)."""
        self.close_stdin()
        if self._code is None:
            self._code = self.poll()
        self._remove()

    def _remove(self) -> None:
        import docker.errors

        if self._gone:
            return
        try:
            self.client.api.remove_container(self.id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise
        self._gone = True
        try:
            self._sock.close()
        except OSError:
            pass
