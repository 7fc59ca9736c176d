"""Network facts (interfaces, per-interface dicts, default IPv4/IPv6) from raw text.

Ansible's ``network/linux.py`` rules: the default route is what ``ip route get`` answers
for a public address (a routing-table lookup, nothing is sent); each /sys/class/net
entry gives an ``ansible_<iface>`` dict; the default interface's address facts are
copied into ``default_ipv4`` (11 keys) and ``default_ipv6``. Pure functions.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any

INTERFACE_TYPE = {"1": "ether", "32": "infiniband", "512": "ppp", "772": "loopback", "65534": "tunnel"}
ROUTE_TARGET = {"v4": "8.8.8.8", "v6": "2404:6800:400a:800::1012"}


def parse_route(text: str, family: str) -> dict[str, str]:
    """``ip -4 route get 8.8.8.8`` -> interface, address (src), gateway (via)."""
    lines = text.splitlines()
    words = lines[0].split() if lines else []
    out: dict[str, str] = {}
    if not words or words[0] != ROUTE_TARGET[family]:
        return out
    for i in range(len(words) - 1):
        if words[i] == "dev":
            out["interface"] = words[i + 1]
        elif words[i] == "src":
            out["address"] = words[i + 1]
        elif words[i] == "via" and words[i + 1] != ROUTE_TARGET[family]:
            out["gateway"] = words[i + 1]
    return out


def parse_local_routes(text: str) -> dict[str, Any]:
    """locally_reachable_ips: the ``local`` routes of the local table (scope host ranges too)."""
    out: dict[str, list[str]] = {"ipv4": [], "ipv6": []}
    for line in text.splitlines():
        words = line.split()
        if len(words) > 1 and words[0] == "local":
            family = out["ipv6" if ":" in words[1] else "ipv4"]
            if words[1] not in family:
                family.append(words[1])
    return {"locally_reachable_ips": out} if text.strip() else {}


def _sysfs(ifaces: str) -> dict[str, dict[str, str]]:
    raw: dict[str, dict[str, str]] = {}
    for line in ifaces.splitlines():
        name, _, rest = line.partition(" ")
        key, _, value = rest.partition(" ")
        raw.setdefault(name, {})[key] = value.strip()
    return raw


def _interface(name: str, r: dict[str, str]) -> dict[str, Any]:
    d: dict[str, Any] = {"device": name}
    if r.get("address") and r["address"] != "00:00:00:00:00:00":
        d["macaddress"] = r["address"]
    if r.get("mtu", "").isdigit():
        d["mtu"] = int(r["mtu"])
    if "operstate" in r:
        d["active"] = r["operstate"] != "down"
    if r.get("module"):
        d["module"] = r["module"].rsplit("/", 1)[-1]
    if "type" in r:
        d["type"] = INTERFACE_TYPE.get(r["type"], "unknown")
    if "is_bridge" in r:
        d["type"] = "bridge"
        d["interfaces"] = r["is_bridge"].split()
        if "bridge/bridge_id" in r:
            d["id"] = r["bridge/bridge_id"]
        if "bridge/stp_state" in r:
            d["stp"] = r["bridge/stp_state"] == "1"
    if "is_bonding" in r:
        d["type"] = "bonding"
        d["slaves"] = r.get("bonding/slaves", "").split()
        for key in ("mode", "miimon", "lacp_rate"):
            d[key] = (r.get(f"bonding/{key}", "").split() or [""])[0]
        if r.get("bonding/primary"):
            d["primary"] = r["bonding/primary"]
            if "bonding/all_slaves_active" in r:
                d["all_slaves_active"] = r["bonding/all_slaves_active"] == "1"
    if "bonding_slave/perm_hwaddr" in r:
        d["perm_macaddress"] = r["bonding_slave/perm_hwaddr"]
    if "pciid" in r:
        d["pciid"] = r["pciid"].rsplit("/", 1)[-1]
    if re.fullmatch(r"-?\d+", r.get("speed", "")):
        d["speed"] = int(r["speed"])
    if r.get("flags", "").startswith("0x"):
        d["promisc"] = int(r["flags"], 16) & 0x0100 > 0
    return d


def _ipv4(words: list[str]) -> dict[str, str]:
    if "/" in words[1]:
        address, prefix = words[1].split("/")
    else:                                    # point-to-point: no prefix
        address, prefix = words[1], "32"
    net = ipaddress.IPv4Network(f"{address}/{prefix}", strict=False)
    broadcast = words[3] if len(words) > 3 and words[2] == "brd" else ""
    return {"address": address, "broadcast": broadcast, "netmask": str(net.netmask),
            "network": str(net.network_address), "prefix": prefix}


def parse_network(ifaces: str, primary: str, secondary: str, route4: str, route6: str) -> dict[str, Any]:
    """get_interfaces_info + get_default_interfaces; interfaces in ifindex order."""
    raw = _sysfs(ifaces)
    if not raw:
        return {}
    order = sorted(raw, key=lambda n: int(raw[n].get("ifindex", "0") or 0))
    interfaces = {name: _interface(name, raw[name]) for name in order}
    default4: dict[str, Any] = dict(parse_route(route4, "v4"))
    default6: dict[str, Any] = dict(parse_route(route6, "v6"))
    all4: list[str] = []
    all6: list[str] = []
    lines = [(line, False) for line in primary.splitlines()] + [(line, True) for line in secondary.splitlines()]
    by_device: dict[str, list[tuple[list[str], bool]]] = {}
    for line, is_secondary in lines:
        m = re.match(r"^\d+:\s+([^\s:@]+)(?:@\S+)?:?\s+(.*)$", line)
        if m:
            by_device.setdefault(m.group(1), []).append((m.group(2).split("\\")[0].split(), is_secondary))
    for device in order:
        d = interfaces[device]
        for words, is_secondary in by_device.get(device, []):
            if len(words) < 2:
                continue
            if words[0] == "inet":
                v4 = _ipv4(words)
                label = words[-1]
                target = interfaces.setdefault(label, {}) if label != device else d
                if not is_secondary and "ipv4" not in target:
                    target["ipv4"] = v4
                else:
                    target.setdefault("ipv4_secondaries", []).append(v4)
                if is_secondary and label != device:
                    d.setdefault("ipv4_secondaries", []).append(v4)
                if default4.get("address") == v4["address"]:
                    default4.update(broadcast=v4["broadcast"], netmask=v4["netmask"], network=v4["network"],
                                    prefix=v4["prefix"], macaddress=raw[device].get("address", ""),
                                    mtu=d.get("mtu"), type=d.get("type", "unknown"), alias=label)
                if not v4["address"].startswith("127."):
                    all4.append(v4["address"])
            elif words[0] == "inet6" and len(words) > 3:
                if words[2] == "peer":
                    address, prefix, scope = words[1], words[3].split("/")[1], words[5]
                else:
                    (address, prefix), scope = words[1].split("/"), words[3]
                d.setdefault("ipv6", []).append({"address": address, "prefix": prefix, "scope": scope})
                if default6.get("address") == address:
                    default6.update(prefix=prefix, scope=scope, macaddress=raw[device].get("address", ""),
                                    mtu=d.get("mtu"), type=d.get("type", "unknown"))
                if address != "::1":
                    all6.append(address)
    facts: dict[str, Any] = {"interfaces": [n.replace(":", "_") for n in interfaces],
                             "default_ipv4": default4, "default_ipv6": default6,
                             "all_ipv4_addresses": all4, "all_ipv6_addresses": all6}
    for name, d in interfaces.items():
        facts[name.replace(":", "_")] = d
    return facts
