"""An sshd inside a network namespace this test creates, behind a veth link it can cut.

The namespace gets 10.231.N.2/30, the host side of the veth 10.231.N.1 (N picked among
/30s no route of this host knows), so nothing leaves the machine: the link is cut with
DROP rules inside the namespace (the host keeps its route to the veth, so no packet to
10.231.N.2 is ever sent through the default gateway). The filesystem is shared, so the
"device" sees the test's temporary paths; the namespace is deleted afterwards (with its
veth pair).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IP = shutil.which("ip") or "/usr/sbin/ip"
PORT = 2222


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=20)


def _free_slot() -> int:
    for n in range(os.getpid() % 200 + 20, 250):
        out = subprocess.run([IP, "-o", "route", "get", f"10.231.{n}.2"], capture_output=True,
                             text=True).stdout
        if " via " in out or not out:
            return n
    raise RuntimeError("no free 10.231.N.0/30 for a test namespace")


def usable() -> str | None:
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "iptables", "tc"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is missing (apt-get install iproute2 iptables)"
    return None


@dataclass
class NetnsSSHD:
    """One namespace, its veth link and (after ``start``) an sshd listening inside it."""

    name: str
    host_if: str
    host_ip: str
    ns_ip: str
    proc: Any = None
    rules: list[list[str]] = field(default_factory=list)

    @classmethod
    def create(cls, tag: str) -> "NetnsSSHD":
        n = _free_slot()
        ns = cls(name=f"collab-{tag}-{os.getpid()}-{n}", host_if=f"ch{n}x{os.getpid() % 10000}",
                 host_ip=f"10.231.{n}.1", ns_ip=f"10.231.{n}.2")
        peer = ns.host_if + "p"
        _run(IP, "netns", "add", ns.name)
        _run(IP, "link", "add", ns.host_if, "type", "veth", "peer", "name", peer)
        _run(IP, "link", "set", peer, "netns", ns.name)
        _run(IP, "addr", "add", f"{ns.host_ip}/30", "dev", ns.host_if)
        _run(IP, "link", "set", ns.host_if, "up")
        ns.inside(IP, "addr", "add", f"{ns.ns_ip}/30", "dev", peer)
        ns.inside(IP, "link", "set", peer, "up")
        ns.inside(IP, "link", "set", "lo", "up")
        return ns

    def inside(self, *cmd: str) -> None:
        _run(IP, "netns", "exec", self.name, *cmd)

    def prefix(self) -> list[str]:
        return [IP, "netns", "exec", self.name]

    def cut(self) -> None:
        """Drop every packet in and out of the namespace: a dead link, no RST, no FIN."""
        for chain in ("INPUT", "OUTPUT"):
            self.inside("iptables", "-I", chain, "1", "-j", "DROP")

    def restore(self) -> None:
        for chain in ("INPUT", "OUTPUT"):
            subprocess.run([*self.prefix(), "iptables", "-D", chain, "-j", "DROP"], capture_output=True)

    def shape(self, rate: str) -> None:
        """Limit what the host sends into the namespace (uploads, syncs) to ``rate``."""
        _run("tc", "qdisc", "replace", "dev", self.host_if, "root", "tbf", "rate", rate,
             "burst", "16kb", "latency", "400ms")

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        subprocess.run([IP, "netns", "del", self.name], capture_output=True)
        subprocess.run([IP, "link", "del", self.host_if], capture_output=True)
