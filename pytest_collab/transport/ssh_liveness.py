"""An SSH keepalive that expects replies, so a dead link is noticed within a bound.

paramiko's own keepalive only sends: over a cut link nothing ever fails, reads block
until TCP gives up (minutes to hours). Here a ``keepalive@openssh.com`` global request
with want-reply goes out every ``timeout / 3`` s; OpenSSH, dropbear and paramiko answer
it (with a failure, which is an answer). When no answer comes within the rest of the
bound, ``on_dead`` runs once (the transport closes the connection, which wakes every
blocked read and write on it). So a link cut at time t is declared dead by t + timeout.

A slow but live link may hold the probe behind megabytes of a sync in the send queue;
while TCP acknowledgements keep arriving (Linux ``TCP_INFO``), the link is alive and
the probe's answer is awaited a while longer.
"""
from __future__ import annotations

import socket
import struct
import sys
import threading
from typing import Any, Callable

PROBE = "keepalive@openssh.com"
_LAST_ACK_RECV = 56      # offset of tcpi_last_ack_recv (ms) in Linux's struct tcp_info


def ms_since_last_ack(sock: Any) -> int | None:
    """Milliseconds since this TCP socket last received an ACK (Linux), else None."""
    if not sys.platform.startswith("linux") or not isinstance(sock, socket.socket):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        return int(struct.unpack_from("I", info, _LAST_ACK_RECV)[0])
    except (OSError, struct.error):
        return None


class Liveness:
    """One watchdog thread per connection; ``stop()`` before closing on purpose."""

    def __init__(self, transport: Any, timeout: float, on_dead: Callable[[str], None],
                 name: str = "ssh") -> None:
        self.transport = transport
        self.timeout = float(timeout)
        self.interval = self.timeout / 3
        self.on_dead = on_dead
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"ssh-liveness-{name}")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _probe(self, answered: threading.Event) -> None:
        try:
            self.transport.global_request(PROBE, wait=True)
        except Exception:   # noqa: BLE001 - a closing transport; the watchdog decides
            return
        answered.set()

    def _acked_recently(self, within_s: float) -> bool:
        since = ms_since_last_ack(getattr(self.transport, "sock", None))
        return since is not None and since < within_s * 1000

    def _run(self) -> None:
        wait = self.timeout - self.interval
        while not self._stop.wait(self.interval):
            if not self.transport.is_active():
                return
            answered = threading.Event()
            threading.Thread(target=self._probe, args=(answered,), daemon=True,
                             name=self._thread.name + "-probe").start()
            while not answered.wait(wait):
                if self._stop.is_set() or not self.transport.is_active():
                    return
                if not self._acked_recently(wait):
                    self.on_dead(f"no answer over SSH for {self.timeout:g} s: the link is down "
                                 f"(bound set by --collab-link-timeout)")
                    return
