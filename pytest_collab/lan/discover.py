"""Find SSH devices on a subnet: a parallel TCP probe, then mDNS as a second source.

The probe only opens a TCP connection to the SSH port and reads the banner (short
timeout, bounded threads); facts are gathered afterwards on what answered, by the
caller with the user's credentials. mDNS (``_ssh._tcp`` via zeroconf) runs only when
zeroconf is importable and the scanned range is not loopback (multicast finds nothing
there, and tests must keep their traffic on loopback).
"""
from __future__ import annotations

import ipaddress
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pytest_collab.errors import CollabError

MAX_HOSTS = 65536
DEFAULT_TIMEOUT = 0.5


@dataclass
class Found:
    address: str
    port: int
    banner: str = ""           # "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"
    source: str = "probe"      # "probe" | "mdns"
    name: str | None = None    # mDNS instance name / host name when known


def hosts_of(cidr: str) -> list[str]:
    """The addresses a scan of ``cidr`` touches (a single address is allowed)."""
    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise CollabError(f"not a network: {cidr!r} ({exc}); write e.g. 192.168.1.0/24") from None
    if net.num_addresses > MAX_HOSTS:
        raise CollabError(f"{cidr} has {net.num_addresses} addresses; scan at most a /16")
    hosts = list(net.hosts()) or [net.network_address]
    return [str(h) for h in hosts]


def probe(address: str, port: int = 22, timeout: float = DEFAULT_TIMEOUT) -> Found | None:
    """One host: connected and (within ``timeout``) sent an SSH banner, or None."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            try:
                banner = sock.recv(256).decode("ascii", "replace").strip()
            except OSError:
                banner = ""
    except OSError:
        return None
    if banner and not banner.startswith("SSH-"):
        return None            # something else listens on that port
    return Found(address, port, banner.splitlines()[0] if banner else "")


def scan(cidr: str, port: int = 22, timeout: float = DEFAULT_TIMEOUT,
         workers: int = 128) -> list[Found]:
    """Probe every host of ``cidr`` in parallel; answers sorted by address."""
    hosts = hosts_of(cidr)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(hosts)))) as pool:
        found = [f for f in pool.map(lambda h: probe(h, port, timeout), hosts) if f]
    return sorted(found, key=lambda f: ipaddress.ip_address(f.address))


def is_loopback(cidr: str) -> bool:
    try:
        return ipaddress.ip_network(cidr, strict=False).is_loopback
    except ValueError:
        return False


def browse_mdns(seconds: float = 3.0) -> list[Found]:
    """``_ssh._tcp`` services announced on the LAN (empty when zeroconf is missing)."""
    try:
        from zeroconf import ServiceBrowser, ServiceListener, Zeroconf
    except ImportError:
        return []
    service = "_ssh._tcp.local."
    names: list[str] = []

    class Listener(ServiceListener):
        def add_service(self, zc: object, type_: str, name: str) -> None:
            names.append(name)

        def update_service(self, zc: object, type_: str, name: str) -> None:
            pass

        def remove_service(self, zc: object, type_: str, name: str) -> None:
            pass

    zc = Zeroconf()
    try:
        ServiceBrowser(zc, service, Listener())
        time.sleep(seconds)
        found = []
        for name in names:
            info = zc.get_service_info(service, name, timeout=1000)
            if info is None:
                continue
            for address in info.parsed_addresses():
                found.append(Found(address, info.port or 22, source="mdns",
                                   name=(info.server or name).rstrip(".")))
        return found
    finally:
        zc.close()


def discover(cidr: str, *, port: int = 22, timeout: float = DEFAULT_TIMEOUT,
             mdns: bool | None = None, mdns_seconds: float = 3.0) -> list[Found]:
    """Probe ``cidr``; add mDNS answers inside it (``mdns=None``: only off loopback)."""
    found = scan(cidr, port, timeout)
    if mdns is None:
        mdns = not is_loopback(cidr)
    if mdns:
        net = ipaddress.ip_network(cidr, strict=False)
        seen = {f.address for f in found}
        for extra in browse_mdns(mdns_seconds):
            try:
                inside = ipaddress.ip_address(extra.address) in net
            except ValueError:
                inside = False
            if inside and extra.address not in seen:
                found.append(extra)
                seen.add(extra.address)
            elif inside:
                for f in found:
                    if f.address == extra.address and f.name is None:
                        f.name = extra.name
    return found


def device_name(found: Found, facts: dict | None, taken: set[str]) -> str:
    """A profile name for a discovered host: hostname from facts or mDNS, else the IP."""
    import re
    base = (facts or {}).get("ansible_hostname") or (found.name or "").split(".")[0] \
        or "host-" + found.address.replace(".", "-").replace(":", "-")
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", str(base)).strip("-.") or "host"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def guess_kind(facts: dict | None) -> str:
    """rpi / jetson from the board, else the architecture family."""
    facts = facts or {}
    family = facts.get("collab_board_family")
    if family:
        return str(family)
    return "server" if facts.get("ansible_architecture") == "x86_64" else "device"
