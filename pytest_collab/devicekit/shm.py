"""Shared-memory segments for the wire's same-host data plane (standard library only).

Why files under ``/dev/shm`` and not ``multiprocessing.shared_memory``: the latter
registers every segment it opens with a resource tracker that unlinks it (and warns)
when the *opening* process exits, which is the server here. A plain file in the tmpfs,
created by the client, mapped by both, unlinked by the client, has one owner.

Same host is not guessed (boot ids match across containers that share no ``/dev/shm``):
the client writes a random nonce into a probe segment and the server must read it back
(see dataplane.py). Segment names carry the session token, and the server maps only
names of its own session, so no other client's segment can be named into it.
"""
from __future__ import annotations

import mmap
import os
import re
import secrets

SHM_DIR = "/dev/shm"
PREFIX = "collab-wire-"


def available() -> bool:
    """A tmpfs both ends may share exists here."""
    return os.path.isdir(SHM_DIR) and os.access(SHM_DIR, os.W_OK)


def segment_name(token: str, slot: int, generation: int) -> str:
    return f"{PREFIX}{token}-{slot}-{generation}"


def name_pattern(token: str) -> re.Pattern[str]:
    """The names a session with ``token`` may hand the server (no paths, no other session's)."""
    return re.compile(rf"{re.escape(PREFIX)}{re.escape(token)}-\d+-\d+")


class Segment:
    """A client-owned mapping of ``size`` bytes (created, later unlinked, by its creator)."""

    def __init__(self, name: str, size: int) -> None:
        self.name, self.size = name, max(size, 1)
        self.path = os.path.join(SHM_DIR, name)
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, self.size)
            self.map = mmap.mmap(fd, self.size)
        except BaseException:
            os.unlink(self.path)
            raise
        finally:
            os.close(fd)

    def close(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        try:
            self.map.close()
        except BufferError:  # a view is still out; the mapping goes with it
            pass


def open_segment(name: str) -> mmap.mmap:
    """Map an existing segment (the server's side; writable so decoded arrays are too) and
    remove its name: both ends keep their mappings, and a client killed later leaks nothing."""
    path = os.path.join(SHM_DIR, name)
    fd = os.open(path, os.O_RDWR)
    try:
        return mmap.mmap(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
        try:
            os.unlink(path)
        except OSError:
            pass


def write_probe() -> tuple[Segment, str]:
    """A probe segment holding a random nonce: proof that the server shares this tmpfs."""
    nonce = secrets.token_hex(16)
    seg = Segment(f"{PREFIX}probe-{secrets.token_hex(8)}", len(nonce))
    seg.map[:len(nonce)] = nonce.encode()
    return seg, nonce


def read_probe(name: str, nonce: str) -> bool:
    """True when segment ``name`` exists here and holds ``nonce``."""
    if not re.fullmatch(rf"{re.escape(PREFIX)}probe-[0-9a-f]+", name or ""):
        return False
    try:
        with open(os.path.join(SHM_DIR, name), "rb") as f:
            return f.read(len(nonce) + 1).decode(errors="replace") == nonce
    except OSError:
        return False
