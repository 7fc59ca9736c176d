"""The packages every device program can import: the wrapper and the device kit.

One table says which package folders of ``pytest_collab`` reach a device and under which
top-level name, so a program imports ``collab_devicekit`` the same way on the local lab,
over SSH and in a container. Remote runtimes sync each folder to ``<root>/<name>`` and put
``<root>`` on ``PYTHONPATH``; the local lab gets a folder of symlinks instead (no copy).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def device_packages() -> dict[str, Path]:
    """Top-level name on the device -> the package folder it is made from."""
    from pytest_collab.devicekit import source_dir as devicekit_dir
    from pytest_collab.wrapper import source_dir as wrapper_dir

    return {"collab_wrapper": wrapper_dir(), "collab_devicekit": devicekit_dir()}


def local_root() -> Path:
    """A folder of symlinks to :func:`device_packages`, for programs on this machine.

    Keyed by this installation's path (two checkouts never share one), made atomically so
    parallel sessions (xdist workers) can race on it safely.
    """
    packages = device_packages()
    here = str(Path(__file__).resolve().parent.parent)
    key = hashlib.sha256(here.encode()).hexdigest()[:12]
    root = Path(tempfile.gettempdir()) / f"pytest-collab-{os.getuid()}" / f"device-packages-{key}"
    root.mkdir(parents=True, exist_ok=True)
    for name, src in packages.items():
        link = root / name
        if link.is_symlink() and Path(os.readlink(link)) == src:
            continue
        tmp = root / f".{name}.{os.getpid()}"
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(src, target_is_directory=True)
        os.replace(tmp, link)
    return root


def with_pythonpath(env: dict[str, str], root: str, sep: str = os.pathsep) -> dict[str, str]:
    """``env`` with ``root`` first on ``PYTHONPATH`` (a value already there is kept after it)."""
    current = env.get("PYTHONPATH")
    return {**env, "PYTHONPATH": root if not current else f"{root}{sep}{current}"}
