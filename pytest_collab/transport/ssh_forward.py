"""A local TCP port forwarded over SSH (``direct-tcpip``), like ``ssh -L``.

Fabric's ``forward_local`` needs a fixed local port and blocks a thread per use; tests
and readiness probes want an ephemeral port and a plain context manager.
"""
from __future__ import annotations

import select
import socket
import threading
from typing import Any


class Forward:
    """Listens on 127.0.0.1:``local_port`` (0 = any) and tunnels each connection."""

    def __init__(self, transport: Any, remote_host: str, remote_port: int, local_port: int,
                 device: str) -> None:
        self.transport = transport
        self.remote = (remote_host, remote_port)
        self.device = device
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", local_port))
        self.server.listen(16)
        self.local_port: int = self.server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True,
                                        name=f"ssh-forward-{device}-{remote_port}")
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.server], [], [], 0.2)
            if not ready:
                continue
            try:
                client, peer = self.server.accept()
            except OSError:
                return
            try:
                chan = self.transport.open_channel("direct-tcpip", self.remote, peer, timeout=10)
            except Exception:   # noqa: BLE001 - refused on the device: drop this client
                client.close()
                continue
            threading.Thread(target=_pump, args=(client, chan, self._stop), daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self.server.close()

    def __enter__(self) -> "Forward":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pump(sock: socket.socket, chan: Any, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes."""
    try:
        while not stop.is_set():
            ready, _, _ = select.select([sock, chan], [], [], 0.2)
            if sock in ready:
                data = sock.recv(65536)
                if not data:
                    break
                chan.sendall(data)
            if chan in ready:
                data = chan.recv(65536)
                if not data:
                    break
                sock.sendall(data)
    except (OSError, EOFError):
        pass
    finally:
        chan.close()
        sock.close()

