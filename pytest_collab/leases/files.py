"""Device leases: parallel runs (xdist workers, several users) never share a device.

A lease is an exclusive ``fcntl.flock`` on one file per device, in a folder beside the
profile (``network_profiles/<profile>.leases/``; for an embedded profile
``~/.cache/pytest-collab/leases/<profile>/``). The kernel drops a flock when its
process dies, however it dies, so a crashed or ``kill -9``'d run never leaves a device
locked: the next run takes it at once. The lock file holds the owner (user, host, pid,
run id, test, since) for ``collab leases``; the file's content is only information, the
flock is the truth (a stale owner in an unlocked file means "free").

A test gets all its devices or none: free devices are selected with
:func:`pytest_collab.select.select_devices` on the profile minus busy devices, then
locked in sorted name order without blocking; if one was taken meanwhile, everything
taken is released and the round starts again. Nobody ever blocks while holding a
lock, so two workers can not deadlock.
"""
from __future__ import annotations

import dataclasses
import fcntl
import getpass
import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable

from pytest_collab.errors import CollabError, SelectionError
from pytest_collab.lan.profile import EMBEDDED_DIR, LAN, Device
from pytest_collab.select import Constraint, select_devices, unsatisfiable_reason

POLL_S = 0.1


class LeaseTimeout(CollabError):
    """The devices a test needs stayed busy for the whole timeout."""


def lease_dir_for(lan: LAN) -> Path:
    """Where the lock files of ``lan``'s devices live (see the module docstring)."""
    path = lan.path
    if path is not None and Path(path).resolve().parent != EMBEDDED_DIR.resolve():
        return Path(path).parent / f"{Path(path).stem}.leases"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "pytest-collab" / "leases" / lan.name


def owner_info(run_id: str | None = None, test: str | None = None) -> dict[str, Any]:
    """Who holds a lease: shown to whoever waits for it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid(), "run_id": run_id,
            "test": test, "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _lock_path(directory: Path, device: str) -> Path:
    return directory / f"{device}.lock"


def _read_owner(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def is_busy(path: Path) -> bool:
    """Does a live process hold the flock on ``path``? (probe with a shared, non-blocking lock)"""
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        fh.close()  # closing drops the probe's lock
    return False


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
    directory: Path
    waited_s: float
    _files: list[IO[bytes]] = dataclasses.field(default_factory=list, repr=False)

    @property
    def names(self) -> list[str]:
        return sorted(d.name for ds in self.selection.values() for d in ds)

    @property
    def held(self) -> bool:
        return bool(self._files)

    def release(self) -> None:
        """Clear the owner record and drop every lock; safe to call twice."""
        files, self._files = self._files, []
        for fh in reversed(files):
            try:
                fh.seek(0)
                fh.truncate()
                fh.flush()
            except OSError:
                pass
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
                fh.close()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try_lock(directory: Path, names: list[str], owner: dict[str, Any]) -> list[IO[bytes]] | None:
    """Lock every name (sorted) without blocking; None, holding nothing, if one is taken."""
    taken: list[IO[bytes]] = []
    for name in sorted(names):
        fh = open(_lock_path(directory, name), "a+b")  # noqa: SIM115  (a+: never truncates someone's record)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            for held in taken:
                fcntl.flock(held, fcntl.LOCK_UN)
                held.close()
            return None
        taken.append(fh)
    record = json.dumps(owner, sort_keys=True).encode()
    for fh in taken:
        fh.seek(0)
        fh.truncate()
        fh.write(record)
        fh.flush()
    return taken


def busy_devices(lan: LAN, directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """Device name -> owner record, for every device of ``lan`` that is leased now."""
    directory = Path(directory) if directory is not None else lease_dir_for(lan)
    return {d.name: _read_owner(_lock_path(directory, d.name)) for d in lan.devices
            if is_busy(_lock_path(directory, d.name))}


def acquire(lan: LAN, constraint: Constraint, owner: dict[str, Any] | None = None,
            timeout: float = 600.0, lease_dir: Path | None = None,
            on_wait: Callable[[str], None] | None = None) -> Lease:
    """Lease free devices of ``lan`` that meet ``constraint``: all of them, or wait.

    A constraint the whole profile can never meet raises ``SelectionError`` at once
    (waiting would not help); busy devices for ``timeout`` seconds raise
    ``LeaseTimeout`` naming them and their owners. ``on_wait`` gets one message when
    the first wait begins (progress for the terminal).
    """
    reason = unsatisfiable_reason(lan, constraint)
    if reason is not None:
        raise SelectionError(reason)
    directory = Path(lease_dir) if lease_dir is not None else lease_dir_for(lan)
    directory.mkdir(parents=True, exist_ok=True)
    owner = owner or owner_info()
    start = time.monotonic()
    told = False
    while True:
        busy = busy_devices(lan, directory)
        free = dataclasses.replace(lan, devices=[d for d in lan.devices if d.name not in busy])
        try:
            selection = select_devices(free, constraint)
        except SelectionError:
            selection = None
        if selection is not None:
            names = [d.name for ds in selection.values() for d in ds]
            files = _try_lock(directory, names, owner)
            if files is not None:
                return Lease(selection, owner, directory, time.monotonic() - start, files)
        waited = time.monotonic() - start
        if waited >= timeout:
            held = "; ".join(f"{n}: {describe_owner(o)}" for n, o in sorted(busy.items())) or "none (raced)"
            raise LeaseTimeout(
                f"profile {lan.name!r}: waited {waited:.1f}s for free devices meeting {constraint}; "
                f"busy devices: {held}. Wait for those runs, stop them, or raise the lease timeout "
                f"(lock files in {directory})")
        if on_wait is not None and not told:
            told = True
            on_wait(f"collab: waiting for {constraint} on profile {lan.name!r}; busy: "
                    + ", ".join(sorted(busy)))
        time.sleep(min(POLL_S, max(0.0, timeout - waited)))


def list_leases(lan: LAN, lease_dir: Path | None = None) -> list[dict[str, Any]]:
    """One row per device of ``lan``: ``device``, ``kind``, ``busy`` and the owner's fields."""
    busy = busy_devices(lan, lease_dir)
    return [{"device": d.name, "kind": d.kind, "busy": d.name in busy, **busy.get(d.name, {})}
            for d in lan.devices]
