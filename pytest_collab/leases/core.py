"""What every lease backend shares: the all-or-none acquire loop, owners, and a watch.

A backend (:mod:`~pytest_collab.leases.files` for one controller, :mod:`~pytest_collab.leases.etcd`
across controllers) only answers three questions: which devices are busy and whose are
they, can I lock these names now (all or none, without blocking), and is a lock I hold
still mine. Everything else lives here once: selecting free devices that meet the
test's constraint, waiting with a message that names the holder, the timeout error,
and the watch that notices a lost lock (a lease folder deleted, an etcd lease expired)
and tells the test that held it, so it is aborted instead of passing on a device
someone else now uses.
"""
from __future__ import annotations

import dataclasses
import getpass
import os
import socket
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

from pytest_collab.errors import CollabError, SelectionError
from pytest_collab.lan.profile import LAN, Device
from pytest_collab.select import Constraint, select_devices, unsatisfiable_reason

POLL_S = 0.1
WATCH_S = 0.5


class LeaseTimeout(CollabError):
    """The devices a test needs stayed busy for the whole timeout."""


class LeaseLost(CollabError):
    """A lock this process held is gone: another run may be using the device now."""


class Held(Protocol):
    """Locks a backend granted: all of one test's devices."""

    def lost(self) -> str | None:
        """Why the locks are no longer ours, or None while they are."""

    def release(self) -> None:
        """Give every lock back; safe to call twice."""


class Backend(Protocol):
    """Where the locks of one profile live."""

    where: str  # for messages: a folder, or an etcd URL and key prefix

    def busy(self, lan: LAN) -> dict[str, dict[str, Any]]:
        """Device name -> owner record, for every device of ``lan`` that is leased now."""

    def try_lock(self, names: list[str], owner: dict[str, Any]) -> Held | None:
        """Lock every name or none (None: one is taken); never blocks."""


def owner_info(run_id: str | None = None, test: str | None = None) -> dict[str, Any]:
    """Who holds a lease: shown to whoever waits for it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid(), "run_id": run_id,
            "test": test, "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def describe_owner(owner: dict[str, Any]) -> str:
    if not owner:
        return "owner unknown (just taken)"
    where = f"{owner.get('user')}@{owner.get('host')} pid {owner.get('pid')}"
    extra = ", ".join(f"{k} {owner[k]}" for k in ("run_id", "test", "since") if owner.get(k))
    return f"{where}{', ' + extra if extra else ''}"


@dataclasses.dataclass
class Lease:
    """Devices held exclusively until :meth:`release` (or the process's death)."""

    selection: dict[str, list[Device]]
    owner: dict[str, Any]
    where: str
    waited_s: float
    _held: Held | None = dataclasses.field(default=None, repr=False)
    lost_reason: str | None = None
    _stop: threading.Event = dataclasses.field(default_factory=threading.Event, repr=False)

    @property
    def names(self) -> list[str]:
        return sorted(d.name for ds in self.selection.values() for d in ds)

    @property
    def held(self) -> bool:
        return self._held is not None

    def check(self) -> str | None:
        """Why the lease was lost, or None; remembered once seen."""
        if self.lost_reason is None and self._held is not None:
            why = self._held.lost()
            if why:
                self.lost_reason = f"lease of {', '.join(self.names)} lost: {why}"
        return self.lost_reason

    def watch(self, on_lost: Callable[[str], None], interval: float = WATCH_S) -> None:
        """Check the locks every ``interval`` s on a thread; call ``on_lost`` once if they go."""
        def run() -> None:
            while not self._stop.wait(interval):
                why = self.check()
                if why:
                    on_lost(why)
                    return

        threading.Thread(target=run, name=f"collab-lease-{'-'.join(self.names)}", daemon=True).start()

    def release(self) -> None:
        """Stop watching and give the devices back; safe to call twice."""
        self._stop.set()
        held, self._held = self._held, None
        if held is not None:
            held.release()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire_from(backend: Backend, lan: LAN, constraint: Constraint, owner: dict[str, Any] | None = None,
                 timeout: float = 600.0, on_wait: Callable[[str], None] | None = None) -> Lease:
    """Lease free devices of ``lan`` that meet ``constraint``: all of them, or wait.

    A constraint the whole profile can never meet raises ``SelectionError`` at once
    (waiting would not help); busy devices for ``timeout`` seconds raise
    ``LeaseTimeout`` naming them and their owners. ``on_wait`` hears, as it happens,
    each time the set of devices waited for changes: who holds them and since when.
    """
    reason = unsatisfiable_reason(lan, constraint)
    if reason is not None:
        raise SelectionError(reason)
    owner = owner or owner_info()
    start = time.monotonic()
    told: set[str] = set()
    while True:
        busy = backend.busy(lan)
        free = dataclasses.replace(lan, devices=[d for d in lan.devices if d.name not in busy])
        try:
            selection = select_devices(free, constraint)
        except SelectionError:
            selection = None
        if selection is not None:
            names = [d.name for ds in selection.values() for d in ds]
            held = backend.try_lock(names, owner)
            if held is not None:
                return Lease(selection, owner, backend.where, time.monotonic() - start, held)
        waited = time.monotonic() - start
        if waited >= timeout:
            holders = "; ".join(f"{n}: {describe_owner(o)}" for n, o in sorted(busy.items())) or "none (raced)"
            raise LeaseTimeout(
                f"profile {lan.name!r}: waited {waited:.1f}s for free devices meeting {constraint}; "
                f"busy devices: {holders}. Wait for those runs, stop them, or raise the lease timeout "
                f"(leases in {backend.where})")
        if on_wait is not None and busy and set(busy) != told:
            told = set(busy)
            on_wait(f"collab: waiting for {constraint} on profile {lan.name!r}: "
                    + "; ".join(f"{n} held by {describe_owner(o)}" for n, o in sorted(busy.items())))
        time.sleep(min(POLL_S, max(0.0, timeout - waited)))


def list_from(backend: Backend, lan: LAN) -> list[dict[str, Any]]:
    """One row per device of ``lan``: ``device``, ``kind``, ``busy`` and the owner's fields."""
    busy = backend.busy(lan)
    return [{"device": d.name, "kind": d.kind, "busy": d.name in busy, **busy.get(d.name, {})}
            for d in lan.devices]
