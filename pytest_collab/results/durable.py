"""Writes that survive a power loss: fsync the data, then the folder that names it.

A rename is atomic against a crash of the process, but not against a power loss: the
kernel may have the new name on disk before the data it points at. So every file a run
depends on (journal lines, finished Parquet parts, merged tables, run.json) is fsynced
before its rename, and the folder after it. Only stdlib: the plugin imports it early.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (a no-op where folders can't be opened)."""
    try:
        fd = os.open(str(path), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sync_file(fh: IO[Any]) -> None:
    """Flush Python's buffer and the kernel's for an open file."""
    fh.flush()
    os.fsync(fh.fileno())


def sync_path(path: Path) -> None:
    """fsync a closed file by name (files other libraries wrote, e.g. Parquet)."""
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_replace(tmp: Path, final: Path) -> Path:
    """fsync ``tmp``, rename it to ``final`` and fsync the folder: all or nothing, even on power loss."""
    sync_path(tmp)
    os.replace(tmp, final)
    fsync_dir(Path(final).parent)
    return Path(final)


def write_text_durably(path: Path, text: str) -> Path:
    """``path`` gets ``text`` atomically and durably (a reader never sees half a file)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        sync_file(fh)
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return path
