"""Which addresses this host reaches directly, without a gateway.

An emulated device lives on a bridge this host created; if its address is not on one
(the lab is down), the kernel would send the packets to the default gateway, off the
machine, to whoever answers there. ``ip route get`` tells which way a packet would go.
"""
from __future__ import annotations

import ipaddress
import shutil
import subprocess

from pytest_collab.errors import CollabError


def local_route(address: str) -> str | None:
    """The interface a packet to ``address`` leaves through when no gateway is involved
    (``lo``, a bridge, a veth), or None when it would go through a gateway or nowhere."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None   # a host name: what it resolves to is not ours to vouch for
    ip = shutil.which("ip") or "/usr/sbin/ip"
    try:
        done = subprocess.run([ip, "-o", "route", "get", address], capture_output=True,
                              text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CollabError(f"can not check the route to {address} ({exc}); the emulated lab needs "
                          f"iproute2 (apt-get install iproute2)") from None
    words = done.stdout.split()
    if done.returncode != 0 or "via" in words or "dev" not in words:
        return None
    return words[words.index("dev") + 1]
