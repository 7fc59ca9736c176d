"""Is the emulated lab up on this engine? Asked before any connection to its devices.

With the lab down, a device address such as 172.28.0.10 is on no network of this host:
the kernel sends it to the default gateway, off the machine, and whatever answers there
gets our SSH handshake. So before the first connection the lab's network must exist on
this engine with every device address inside its subnet, every device container must
run, and each address must be routed through the lab's own bridge.
"""
from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from pytest_collab.labs.emulated import LabError, Settings, status
from pytest_collab.transport.routes import local_route

if TYPE_CHECKING:
    from pytest_collab.lan.profile import LAN


def not_up(lan: "LAN", why: str) -> LabError:
    return LabError(f"emulated lab is not up: collab lab up {lan.name} ({why})")


def _bridge(network: Any) -> str:
    options = network.attrs.get("Options") or {}
    return options.get("com.docker.network.bridge.name") or f"br-{network.id[:12]}"


def check_up(lan: "LAN", client: Any = None) -> None:
    """Raise ``LabError`` ("emulated lab is not up: collab lab up NAME (why)") unless the
    lab's network, its containers and the routes to them are all in place on this host."""
    from pytest_collab.containers.engines import local_client
    from pytest_collab.errors import CollabError

    cfg = Settings.of(lan)
    if client is None:
        try:
            client = local_client(timeout=10)
        except CollabError as exc:
            raise not_up(lan, f"no docker engine: {exc}") from None
    found = [n for n in client.networks.list(names=[cfg.network]) if n.name == cfg.network]
    if not found:
        raise not_up(lan, f"network {cfg.network} does not exist on this engine")
    network = found[0]
    subnets = [ipaddress.ip_network(c["Subnet"]) for c in
               (network.attrs.get("IPAM") or {}).get("Config") or [] if c.get("Subnet")]
    states = status(lan, client=client)
    down = [f"{name} {state}" for name, state in states.items() if state != "running"]
    if down:
        raise not_up(lan, "device containers not running: " + ", ".join(down))
    bridge = _bridge(network)
    for device in lan.devices:
        try:
            inside = any(ipaddress.ip_address(device.address) in net for net in subnets)
        except ValueError:
            inside = False
        if not inside:
            raise LabError(f"device {device.name!r}: address {device.address} is not on the lab "
                           f"network {cfg.network} ({', '.join(map(str, subnets)) or 'no subnet'}); "
                           f"fix its address in profile {lan.name!r}")
        route = local_route(device.address)
        if route != bridge:
            raise not_up(lan, f"{device.address} is routed through {route or 'a gateway'}, "
                              f"not the lab's bridge {bridge}")
