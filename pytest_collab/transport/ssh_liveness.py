"""An SSH keepalive that expects replies, so a dead link is noticed within a bound.

paramiko's own keepalive only sends: over a cut link nothing ever fails, reads block
until TCP gives up (minutes to hours). Here a ``keepalive@openssh.com`` global request
with want-reply goes out every ``timeout / 3`` s; OpenSSH, dropbear and paramiko answer
it (with a failure, which is an answer). When no answer comes within the rest of the
bound, ``on_dead`` runs once (the transport closes the connection, which wakes every
blocked read and write on it). So a link cut at time t is declared dead by t + timeout.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

PROBE = "keepalive@openssh.com"


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

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.transport.is_active():
                return
            answered = threading.Event()
            threading.Thread(target=self._probe, args=(answered,), daemon=True,
                             name=self._thread.name + "-probe").start()
            if not answered.wait(self.timeout - self.interval) and not self._stop.is_set():
                self.on_dead(f"no answer over SSH for {self.timeout:g} s: the link is down "
                             f"(bound set by --collab-link-timeout)")
                return
