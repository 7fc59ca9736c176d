"""Device leases: parallel runs (xdist workers, other runs, other controllers) never share a device."""
from __future__ import annotations

from pathlib import Path

from pytest_collab.lan.profile import LAN
from pytest_collab.leases.core import Backend


def backend_for(spec: str | None, lan: LAN, scope: Path | None = None) -> Backend:
    """The lease backend ``--collab-leases`` names: ``files`` (default) or ``etcd://HOST:PORT[/PREFIX]``."""
    text = str(spec or "files")
    if text.startswith("etcd://"):
        from pytest_collab.leases.etcd import EtcdBackend

        return EtcdBackend(text, lan.name)
    from pytest_collab.errors import OptionError
    from pytest_collab.leases.files import FileBackend, lease_dir_for

    if text != "files":
        raise OptionError(f"--collab-leases {text!r}: expected 'files' or etcd://HOST:PORT[/PREFIX]")
    return FileBackend(lease_dir_for(lan, scope))
