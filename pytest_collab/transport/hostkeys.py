"""Host key checking: unknown keys rejected by default, trust-on-first-use by opt-in.

Fabric's ``Connection`` installs paramiko's ``AutoAddPolicy`` (accept anything); a lab
profile must never do that silently, so the SSH transport replaces it with the policy
built here. A changed key is always refused, and the message names the file and line to
fix, because "REMOTE HOST IDENTIFICATION HAS CHANGED" without a line number sends people
to delete the whole file.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_collab.errors import TransportError

POLICIES = ("reject", "tofu")
_WRITE_LOCK = threading.Lock()   # group threads may record keys into one file at once


def host_key_name(host: str, port: int) -> str:
    """The known_hosts spelling OpenSSH uses: ``host`` on port 22, else ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


@dataclass
class KnownKey:
    file: Path
    line: int
    key_type: str
    key_b64: str


def _matches(pattern: str, name: str) -> bool:
    if pattern.startswith("|1|"):
        from paramiko.hostkeys import HostKeys
        return HostKeys.hash_host(name, pattern) == pattern
    return pattern == name


def lookup(files: list[Path], name: str) -> list[KnownKey]:
    """Every key recorded for ``name`` in ``files``, with its file and line number."""
    found: list[KnownKey] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for number, raw in enumerate(text.splitlines(), start=1):
            parts = raw.split()
            if len(parts) < 3 or parts[0].startswith("#") or parts[0].startswith("@"):
                continue
            if any(_matches(p, name) for p in parts[0].split(",")):
                found.append(KnownKey(file, number, parts[1], parts[2]))
    return found


def load_into(client: Any, files: list[Path]) -> None:
    """Give paramiko the known keys so it negotiates the host key type we recorded."""
    for file in files:
        if file.is_file():
            client.get_host_keys().load(str(file))


def changed_key_error(device: str, files: list[Path], name: str, key_type: str,
                      fingerprint: str) -> TransportError:
    """The refusal for a changed key, naming each file and line that holds the old one."""
    places = [f"{k.file} line {k.line}" for k in lookup(files, name) if k.key_type == key_type]
    where = "; ".join(places) or ", ".join(str(f) for f in files)
    return TransportError(
        device,
        f"host key for {name} CHANGED (now {key_type} {fingerprint}); refusing to connect. "
        f"If the device was really reinstalled, delete the old key at {where} "
        f"(or run: ssh-keygen -R '{name}' -f FILE) and connect again.")


def make_policy(device: str, policy: str, record_to: Path | None, files: list[Path]) -> Any:
    """A paramiko ``MissingHostKeyPolicy`` for ``policy`` ("reject" or "tofu")."""
    import paramiko

    if policy not in POLICIES:
        raise TransportError(device, f"ssh.host_key_policy {policy!r} is not one of "
                                     f"{', '.join(POLICIES)}")

    class _Policy(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            fingerprint = key.fingerprint
            if policy == "reject" or record_to is None:
                looked = ", ".join(str(f) for f in files) or "no known_hosts file"
                hint = ("set ssh.known_hosts in the profile and " if record_to is None and
                        policy == "tofu" else "")
                raise TransportError(
                    device,
                    f"unknown host key for {hostname} ({key.get_name()} {fingerprint}); "
                    f"not in {looked}. Check the fingerprint on the device "
                    f"(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then {hint}add it with "
                    f"`ssh-keyscan -p PORT HOST >> FILE`, or set ssh.host_key_policy: tofu.")
            record(record_to, hostname, key.get_name(), key.get_base64())
            client.get_host_keys().add(hostname, key.get_name(), key)

    return _Policy()


def record(file: Path, name: str, key_type: str, key_b64: str) -> None:
    """Append one key line to ``file`` (created 0600, parent folders made)."""
    with _WRITE_LOCK:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(f"{name} {key_type} {key_b64}\n")
