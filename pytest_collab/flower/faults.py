"""Fault injection for Flower runs: lose a client device mid-run, as a power cut would.

:func:`pytest_collab.flower.run` blocks until the run ends, so the fault runs on a
thread: it watches the client's ClientApp executor for the round to finish there, then
kills that device's SuperNode and executor at once (``Program.kill``).
"""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_collab.fixtures import Collab


class ClientCrash(threading.Thread):
    """Kill ``device``'s Flower programs once its ClientApp finished ``after_round``'s
    ``phase`` message; ``killed_at`` (monotonic) says when, ``node_id`` which node it was."""

    def __init__(self, collab: "Collab", device: str, after_round: int,
                 phase: str = "evaluate", timeout: float = 300.0) -> None:
        super().__init__(name=f"crash-{device}", daemon=True)
        self.collab, self.device, self.after_round, self.phase = collab, device, after_round, phase
        self.timeout = timeout
        self.killed_at: float | None = None
        self.node_id: str | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        names = {f"supernode-{self.device}", f"clientapp-{self.device}"}
        while time.monotonic() < deadline:
            progs = [p for p in self.collab.programs if p.name in names]
            done = [r for p in progs for r in p.results()
                    if r.get("flower") == "client" and r.get("phase") == self.phase
                    and (r.get("round") or 0) >= self.after_round]
            if done:
                self.node_id = str(done[0]["node_id"])
                for prog in progs:
                    prog.kill()
                self.killed_at = time.monotonic()
                return
            if any(p.finished for p in progs):
                return
            time.sleep(0.1)


def crash_client(collab: "Collab", device: str, after_round: int, **kw: object) -> ClientCrash:
    """Start a :class:`ClientCrash` thread (call before ``flower.run``)."""
    crash = ClientCrash(collab, device, after_round, **kw)  # type: ignore[arg-type]
    crash.start()
    return crash
