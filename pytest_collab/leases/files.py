"""Device leases as file locks: the default, for the runs of one controller machine.

A lease is an exclusive ``fcntl.flock`` on one file per device, in a folder beside the
profile (``network_profiles/<profile>.leases/``). The embedded profiles (the local lab)
are virtual devices of one checkout, so their folder is per checkout:
``~/.cache/pytest-collab/leases/<profile>-<hash of the checkout>/`` (two checkouts of
the same user never wait for each other's virtual devices). The kernel drops a flock
when its process dies, however it dies, so a ``kill -9``'d run never leaves a device
locked. The lock file holds the owner (user, host, pid, run id, test, since) for
``collab leases``; the flock is the truth (a stale owner in an unlocked file means free).

A lock is lost when its file is deleted or replaced (someone removed the lease folder):
the next run would lock a new file of the same name. :meth:`FileLocks.lost` notices by
comparing the open file with the path's file. Nobody blocks while holding a lock
(see :func:`pytest_collab.leases.core.acquire_from`), so two workers can not deadlock.

For several controllers on several machines use ``--collab-leases etcd://HOST:PORT``.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import IO, Any, Callable

from pytest_collab.lan.profile import EMBEDDED_DIR, LAN
from pytest_collab.leases.core import (  # noqa: F401  (re-exported: the lease API of one module)
    Lease,
    LeaseLost,
    LeaseTimeout,
    acquire_from,
    describe_owner,
    list_from,
    owner_info,
)
from pytest_collab.select import Constraint


def lease_dir_for(lan: LAN, scope: Path | None = None) -> Path:
    """Where the lock files of ``lan``'s devices live (see the module docstring).

    ``scope`` is the checkout (pytest's rootdir) an embedded profile's leases belong to;
    the working directory when not given.
    """
    path = lan.path
    if path is not None and Path(path).resolve().parent != EMBEDDED_DIR.resolve():
        return Path(path).parent / f"{Path(path).stem}.leases"
    checkout = str(Path(scope or Path.cwd()).resolve())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "pytest-collab" / "leases" / f"{lan.name}-{hashlib.sha1(checkout.encode()).hexdigest()[:10]}"


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


class FileLocks:
    """The flocked files of one lease."""

    def __init__(self, files: list[tuple[Path, IO[bytes]]]) -> None:
        self._files = files

    def lost(self) -> str | None:
        for path, fh in self._files:
            try:
                same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
            except FileNotFoundError:
                return f"lock file {path} was deleted; another run may hold the device now"
            except (OSError, ValueError):
                continue  # released meanwhile
            if not same:
                return f"lock file {path} was replaced; another run may hold the device now"
        return None

    def release(self) -> None:
        files, self._files = self._files, []
        for _, fh in reversed(files):
            try:
                fh.seek(0)
                fh.truncate()
                fh.flush()
            except OSError:
                pass
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
                fh.close()


class FileBackend:
    """Leases of one profile as flocked files in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.where = str(self.directory)

    def busy(self, lan: LAN) -> dict[str, dict[str, Any]]:
        return {d.name: _read_owner(_lock_path(self.directory, d.name)) for d in lan.devices
                if is_busy(_lock_path(self.directory, d.name))}

    def try_lock(self, names: list[str], owner: dict[str, Any]) -> FileLocks | None:
        """Lock every name (sorted) without blocking; None, holding nothing, if one is taken."""
        self.directory.mkdir(parents=True, exist_ok=True)  # again: someone may have removed it
        taken: list[tuple[Path, IO[bytes]]] = []
        for name in sorted(names):
            path = _lock_path(self.directory, name)
            fh: IO[bytes] = open(path, "a+b")  # noqa: SIM115  (a+: never truncates someone's record)
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                FileLocks(taken).release()
                return None
            taken.append((path, fh))
        record = json.dumps(owner, sort_keys=True).encode()
        for _, held in taken:
            held.seek(0)
            held.truncate()
            held.write(record)
            held.flush()
        return FileLocks(taken)


def busy_devices(lan: LAN, directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """Device name -> owner record, for every device of ``lan`` that is leased now."""
    return FileBackend(Path(directory) if directory is not None else lease_dir_for(lan)).busy(lan)


def acquire(lan: LAN, constraint: Constraint, owner: dict[str, Any] | None = None,
            timeout: float = 600.0, lease_dir: Path | None = None,
            on_wait: Callable[[str], None] | None = None) -> Lease:
    """Lease free devices of ``lan`` meeting ``constraint`` with file locks (see core.acquire_from)."""
    backend = FileBackend(Path(lease_dir) if lease_dir is not None else lease_dir_for(lan))
    return acquire_from(backend, lan, constraint, owner, timeout, on_wait)


def list_leases(lan: LAN, lease_dir: Path | None = None) -> list[dict[str, Any]]:
    """One row per device of ``lan``: ``device``, ``kind``, ``busy`` and the owner's fields."""
    return list_from(FileBackend(Path(lease_dir) if lease_dir is not None else lease_dir_for(lan)), lan)
