"""Real OpenSSH servers on loopback addresses for the SSH tests (and the integrator's).

``ssh_lab`` (session scope) starts one ``sshd -D -e -f CONFIG`` per address
127.0.1.9-11, all on one free port (so discovery can scan 127.0.1.8/29), each with its
own throwaway host key, and one throwaway client key authorized for the current user.
Nothing leaves loopback. Without ``sshd`` the tests skip locally and fail under CI.

To run an experiment on these servers, write a profile with
``ssh_lab.write_profile(path)`` (transport ssh, tofu off, known_hosts pre-filled).

``netns_sshd`` (per test) is one more sshd, inside a network namespace behind a veth link
the test can cut (``tests/ssh/netns.py``): dead links, blackholed devices.
"""
from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
ADDRESSES = ("127.0.1.9", "127.0.1.10", "127.0.1.11")
SCAN_CIDR = "127.0.1.8/29"   # owned by these tests: only ADDRESSES listen in it
SERVER_CONFIG = """\
ListenAddress {host}:{port}
HostKey {host_key}
AuthorizedKeysFile {authorized}
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PidFile none
LogLevel ERROR
MaxStartups 50
ClientAliveInterval 0
Subsystem sftp internal-sftp
"""


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "collab-test", "-f",
                    str(path)], check=True)
    path.chmod(0o600)
    return path.with_suffix(".pub").read_text().strip()


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _common_free_port(hosts: tuple[str, ...]) -> int:
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind((hosts[0], 0))
            port = sock.getsockname()[1]
        if all(_port_free(h, port) for h in hosts):
            return port
    raise RuntimeError("no port free on every test address")


def _wait_banner(host: str, port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd on {host}:{port} exited: {log.read_text()}")
        try:
            with socket.create_connection((host, port), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd on {host}:{port} never answered: {log.read_text()}")


@dataclass
class SSHServer:
    name: str
    host: str
    port: int
    host_key: Path
    host_pub: str          # "ssh-ed25519 AAAA... comment"
    proc: subprocess.Popen | None = None

    @property
    def known_hosts_line(self) -> str:
        key_type, key_b64 = self.host_pub.split()[:2]
        return f"[{self.host}]:{self.port} {key_type} {key_b64}"


@dataclass
class SSHLab:
    root: Path
    client_key: Path
    user: str
    port: int
    servers: list[SSHServer] = field(default_factory=list)
    cidr: str = SCAN_CIDR

    def known_hosts(self, path: Path, servers: list[SSHServer] | None = None) -> Path:
        """Write a known_hosts file trusting ``servers`` (default: all)."""
        lines = [s.known_hosts_line for s in (servers if servers is not None else self.servers)]
        path.write_text("".join(line + "\n" for line in lines))
        return path

    def ssh_dict(self, **overrides: Any) -> dict[str, Any]:
        data = {"user": self.user, "port": self.port, "key": str(self.client_key),
                "agent": False, "connect_timeout": 3.0}
        data.update(overrides)
        return data

    def device(self, index: int = 0, *, name: str | None = None, kind: str = "rpi",
               **ssh: Any) -> Any:
        from pytest_collab.lan.profile import Device, SSHConfig
        server = self.servers[index]
        return Device(name=name or server.name, kind=kind, address=server.host, transport="ssh",
                      ssh=SSHConfig(**self.ssh_dict(**ssh)))

    def write_profile(self, path: Path, *, kinds: tuple[str, ...] = ("server", "rpi", "jetson"),
                      python: str | None = None, workdir: str | None = None) -> Path:
        """A LAN profile YAML over these servers, host keys pre-trusted (policy reject)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        known = self.known_hosts(path.with_suffix(".known_hosts"))
        devices = []
        for server, kind in zip(self.servers, kinds):
            entry: dict[str, Any] = {"name": server.name, "kind": kind, "address": server.host,
                                     "transport": "ssh",
                                     "ssh": self.ssh_dict(known_hosts=str(known))}
            if python:
                entry["python"] = python
            if workdir:
                entry["workdir"] = f"{workdir}/{server.name}"
            devices.append(entry)
        doc = {"name": path.stem, "controller": {"name": "controller", "address": "127.0.0.1"},
               "devices": devices}
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path


def _start(root: Path, server: SSHServer, authorized: Path, prefix: tuple[str, ...] = ()) -> None:
    config = root / f"{server.name}.sshd_config"
    config.write_text(SERVER_CONFIG.format(host=server.host, port=server.port,
                                           host_key=server.host_key, authorized=authorized))
    log = root / f"{server.name}.log"
    server.proc = subprocess.Popen([*prefix, SSHD, "-D", "-e", "-f", str(config)],
                                   stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    _wait_banner(server.host, server.port, server.proc, log)


@pytest.fixture(scope="session")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHLab]:
    """Three real sshd servers on 127.0.1.9-11 (one shared free port), stopped at the end."""
    if SSHD is None or shutil.which("ssh-keygen") is None:
        message = "OpenSSH server not installed (apt-get install openssh-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    if os.geteuid() == 0:
        # sshd refuses to start as root without its privilege separation directory.
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    root = tmp_path_factory.mktemp("sshlab")
    client_key = root / "client_key"
    client_pub = _keygen(client_key)
    authorized = root / "authorized_keys"
    authorized.write_text(client_pub + "\n")
    port = _common_free_port(ADDRESSES)
    lab = SSHLab(root=root, client_key=client_key, user=getpass.getuser(), port=port)
    try:
        for i, host in enumerate(ADDRESSES):
            key = root / f"host{i}_key"
            server = SSHServer(name=f"dev{i}", host=host, port=port, host_key=key,
                               host_pub=_keygen(key))
            lab.servers.append(server)
            _start(root, server, authorized)
        yield lab
    finally:
        for server in lab.servers:
            if server.proc is not None:
                server.proc.terminate()
                try:
                    server.proc.wait(5)
                except subprocess.TimeoutExpired:
                    server.proc.kill()


def start_extra_sshd(lab: SSHLab, name: str, host: str, host_key: Path) -> SSHServer:
    """Start one more sshd (own port) with the given host key; the caller stops it."""
    port = _common_free_port((host,))
    pub = host_key.with_suffix(".pub").read_text().strip()
    server = SSHServer(name=name, host=host, port=port, host_key=host_key, host_pub=pub)
    _start(lab.root, server, lab.root / "authorized_keys")
    return server


@pytest.fixture
def fresh_key(ssh_lab: SSHLab, tmp_path: Path) -> Path:
    """A new throwaway host key (for 'changed key' tests)."""
    key = tmp_path / "new_host_key"
    _keygen(key)
    return key


@dataclass
class CuttableDevice:
    """An sshd in its own namespace (``netns``) as a profile device (``entry``)."""

    netns: Any
    server: SSHServer
    known_hosts: Path

    def entry(self, name: str = "cut0", kind: str = "rpi", lab: SSHLab | None = None,
              **ssh: Any) -> dict[str, Any]:
        assert lab is not None
        return {"name": name, "kind": kind, "address": self.server.host, "transport": "ssh",
                "ssh": lab.ssh_dict(port=self.server.port, known_hosts=str(self.known_hosts), **ssh)}


@pytest.fixture
def netns_sshd(ssh_lab: SSHLab, tmp_path: Path) -> Iterator[CuttableDevice]:
    """An sshd behind a veth link into a namespace of its own; ``.netns.cut()`` kills the link."""
    from .netns import PORT, NetnsSSHD, usable

    why = usable()
    if why:
        from services import missing

        missing(why)
    ns = NetnsSSHD.create("cut")
    try:
        key = tmp_path / "ns_host_key"
        server = SSHServer(name=ns.name, host=ns.ns_ip, port=PORT, host_key=key, host_pub=_keygen(key))
        _start(ssh_lab.root, server, ssh_lab.root / "authorized_keys", tuple(ns.prefix()))
        ns.proc = server.proc
        known = tmp_path / "ns.known_hosts"
        ssh_lab.known_hosts(known, [server])
        yield CuttableDevice(ns, server, known)
    finally:
        ns.close()
