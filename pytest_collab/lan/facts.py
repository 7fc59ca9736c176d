"""Device facts in Ansible's names, gathered agentless: one shell script over SSH.

``facts_script.SCRIPT`` runs in one round trip and prints raw ``@@@ section`` blocks;
``parse_facts`` turns them into what ``ansible -m setup`` reports for the same host
(``ansible_distribution_version``, ``ansible_processor``, ``ansible_mounts``, ...), by
the rules of Ansible's own fact modules restated in ``facts_system``, ``facts_hardware``
and ``facts_network``. What Ansible has no name for is ``collab_*``. A fact whose
source is missing on the device is absent, never a guess.
"""
from __future__ import annotations

import re
import subprocess
import time
from typing import TYPE_CHECKING, Any, Callable

from pytest_collab.lan import facts_hardware, facts_host, facts_network, facts_system
from pytest_collab.lan.facts_script import SCRIPT, script, split_sections

if TYPE_CHECKING:
    from pytest_collab.lan.profile import Device

__all__ = ["SCRIPT", "apply", "gather", "gather_local", "gather_many", "now_iso", "parse_facts"]

COLLAB_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "armhf"}


def _version(text: str) -> str | None:
    m = re.search(r"(\d+\.\d+(?:\.\d+)?)", text)
    return m.group(1) if m else None


def parse_facts(output: str) -> dict[str, Any]:
    """The whole script output -> Ansible-named facts (pure; tested on captured outputs)."""
    s = split_sections(output)
    facts: dict[str, Any] = facts_system.parse_platform(s.get("uname", ""), s.get("py", ""),
                                                        s.get("long_bit", ""), s.get("hostname_f", ""),
                                                        s.get("machine_id", ""))
    lsb = facts_system.parse_lsb(s.get("lsb_release", ""), s.get("lsb_file", ""))
    facts.update(facts_system.parse_distribution(s.get("os_release", ""), s.get("debian_version", ""), lsb))
    facts["lsb"] = lsb
    facts.update(facts_system.parse_dmi(s.get("dmi", "")))
    facts.update(facts_system.parse_virtualization(s.get("virt", ""), s.get("dmi", ""), s.get("cpuinfo", ""),
                                                   s.get("xen", "")))
    date_time = facts_system.parse_date_time(s.get("date", ""))
    if date_time:
        facts["date_time"] = date_time
    facts.update(facts_hardware.parse_cpu(s.get("cpuinfo", ""), facts.get("architecture", ""),
                                          s.get("nproc", ""), s.get("xen", "")))
    facts.update(facts_hardware.parse_memory(s.get("meminfo", "")))
    if s.get("mtab"):
        facts.update(facts_hardware.parse_mounts(s["mtab"], s.get("statvfs", ""), s.get("findmnt", ""),
                                                 s.get("lsblk", ""), s.get("udev_uuid", "")))
    facts.update(facts_hardware.parse_devices(s.get("blockdevs", ""), s.get("disklinks", ""),
                                              s.get("lspci", "")))
    facts.update(facts_network.parse_network(s.get("ifaces", ""), s.get("addr_primary", ""),
                                             s.get("addr_secondary", ""), s.get("route4", ""),
                                             s.get("route6", "")))
    facts.update(facts_host.parse_host(s, facts_system.py_info(s.get("py", ""))))
    facts.update(facts_network.parse_local_routes(s.get("local_routes", "")))
    uptime = s.get("uptime", "").split()
    if uptime:
        facts["uptime_seconds"] = int(float(uptime[0]))
    if "python_version" not in facts and _version(s.get("python", "")):
        facts["python_version"] = _version(s.get("python", ""))
    # Ansible's fact namespace: the prefix, and '-' in a name becomes '_' (ansible_br_47a3...)
    out = {f"ansible_{k.replace('-', '_')}": v for k, v in facts.items()}
    out.update(_collab_facts(s, facts))
    return out


def _collab_facts(s: dict[str, str], facts: dict[str, Any]) -> dict[str, Any]:
    """What Ansible has no fact for: board, L4T/JetPack, GPUs, temperatures, docker, disk."""
    out = facts_hardware.parse_board(s.get("model", ""), s.get("tegra", ""))
    out.update(facts_hardware.parse_gpus(s.get("gpu", ""), out.get("collab_board_family")))
    out.update(facts_hardware.parse_thermal(s.get("thermal", "")))
    docker = _version(s.get("docker", ""))
    if docker:
        out["collab_docker_version"] = docker
    pretty = facts_system.key_values(s.get("os_release", "")).get("PRETTY_NAME")
    if pretty:
        out["collab_os_pretty"] = pretty
    meminfo = facts_system.key_values(s.get("meminfo", "").replace(":", "="))
    if meminfo.get("MemAvailable", "").split()[:1]:
        out["collab_memavailable_mb"] = int(meminfo["MemAvailable"].split()[0]) // 1024
    root = next((m for m in facts.get("mounts", []) if m["mount"] == "/" and "size_total" in m), None)
    if root:
        out["collab_disk_total_gb"] = round(root["size_total"] / 1e9, 1)
        out["collab_disk_free_gb"] = round(root["size_available"] / 1e9, 1)
    arch = facts.get("architecture")
    if arch:
        out["collab_arch"] = "jetson" if out.get("collab_board_family") == "jetson" \
            else COLLAB_ARCH.get(arch, arch)
    return out


def gather(transport: Any, timeout: float = 30) -> dict[str, Any]:
    """Facts of the device behind ``transport`` (any transport with ``run``)."""
    from pytest_collab.errors import TransportError
    python = getattr(getattr(transport, "device", None), "python", None) or "python3"
    result = transport.run(script(python), timeout=timeout)
    if result.error:
        raise TransportError(transport.device.name, f"fact gathering failed: {result.error}")
    return parse_facts(result.stdout)


def gather_local(timeout: float = 30, python: str = "python3") -> dict[str, Any]:
    """Facts of this machine (the controller), with the same script."""
    proc = subprocess.run(["sh", "-c", script(python)], capture_output=True, text=True,
                          timeout=timeout)
    return parse_facts(proc.stdout)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def gather_many(devices: list["Device"], *, connect: Callable[["Device"], Any],
                timeout: float = 60) -> dict[str, Any]:
    """Facts of many devices in parallel: name -> ``group.Outcome`` (value = facts)."""
    from pytest_collab.transport.group import map_devices

    def one(device: "Device") -> dict[str, Any]:
        transport = connect(device)
        try:
            return gather(transport, timeout=timeout)
        finally:
            transport.close()
    return map_devices(devices, one, timeout=timeout + 30)


def apply(device: "Device", facts: dict[str, Any]) -> None:
    """Store facts on the device with their time; fill arch/os when not set by hand."""
    device.facts = facts
    device.facts_time = now_iso()
    if device.arch is None and facts.get("collab_arch"):
        device.arch = str(facts["collab_arch"])
    if device.os is None and facts.get("collab_os_pretty"):
        device.os = str(facts["collab_os_pretty"])
