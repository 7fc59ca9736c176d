"""Link shaping of an emulated device's uplink: the ``tc``/``iptables`` script and its rules.

Pure text, so the rules test fast: bandwidth through ``tbf``, loss through iptables'
``statistic`` match, delay and jitter through ``netem`` only. Kernels without
``sch_netem`` (``tc qdisc ... netem`` answers "Specified qdisc kind is unknown") can
not delay packets; a declared delay is then refused with that reason rather than
silently ignored, because a test that measures delay would report a lie.
"""
from __future__ import annotations

from pytest_collab.errors import CollabError

NETEM_UNKNOWN = "Specified qdisc kind is unknown"
#: tbf's bucket must hold a whole GSO super-packet (64 KiB) or large sends stall.
MIN_BURST_BYTES = 131072


class ShapingError(CollabError):
    """A device's declared link can not be applied here; the message says why and what to do."""


def burst_bytes(rate_mbit: float) -> int:
    """Bucket size: 10 ms at the rate, at least two GSO packets."""
    return max(MIN_BURST_BYTES, int(rate_mbit * 1e6 / 8 * 0.01))


def wants_netem(link: dict[str, float]) -> bool:
    return bool(link.get("delay_ms") or link.get("jitter_ms"))


def script(link: dict[str, float], dev: str = "eth0") -> str:
    """The shell commands that give ``dev`` the declared link (idempotent: replace, flush)."""
    lines = ["set -e", f"tc qdisc del dev {dev} root 2>/dev/null || true",
             "iptables -F OUTPUT"]
    rate = link.get("rate_mbit")
    parent = "root"
    if wants_netem(link):
        delay = f"delay {link.get('delay_ms', 0):g}ms"
        if link.get("jitter_ms"):
            delay += f" {link['jitter_ms']:g}ms distribution normal"
        lines.append(f"tc qdisc add dev {dev} root handle 1: netem {delay}")
        parent = "parent 1:"
    if rate:
        lines.append(f"tc qdisc add dev {dev} {parent} handle 2: tbf rate {rate:g}mbit "
                     f"burst {burst_bytes(rate)} latency 100ms")
    loss = link.get("loss_pct")
    if loss:
        lines.append(f"iptables -A OUTPUT -o {dev} -m statistic --mode random "
                     f"--probability {loss / 100:.6f} -j DROP")
    lines.append(f"tc qdisc show dev {dev}")
    return "\n".join(lines)


def refuse_delay(device: str, link: dict[str, float], tc_output: str) -> ShapingError:
    """The error for a declared delay on a kernel without netem."""
    declared = ", ".join(f"{k}={link[k]:g}" for k in ("delay_ms", "jitter_ms") if link.get(k))
    return ShapingError(
        f"device {device!r}: link declares {declared}, but this kernel has no sch_netem "
        f"(tc answers {tc_output.strip()!r}), so packets can not be delayed here; remove "
        "delay_ms/jitter_ms from the device's link in the profile, or run the lab on a "
        "kernel with sch_netem (modprobe sch_netem)")
