"""Device facts from plain shell commands (no Python on the device), with Ansible names.

One script runs in one SSH round trip and prints ``@@@ section`` blocks; the parse
functions below are pure, so captured outputs (a Raspberry Pi, a Jetson) test them.
Names follow Ansible's setup module (``ansible_architecture``, ``ansible_memtotal_mb``,
...) so Ansible-side tools read them; what Ansible has no name for is ``collab_*``.
"""
from __future__ import annotations

import re
import subprocess
import time
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from pytest_collab.lan.profile import Device

MARK = "@@@ "
SECTIONS: dict[str, str] = {
    "uname": "uname -s; uname -r; uname -m; uname -n",
    "hostname_f": "hostname -f 2>/dev/null || hostname",
    "os_release": "cat /etc/os-release 2>/dev/null",
    "nproc": "nproc 2>/dev/null || getconf _NPROCESSORS_ONLN",
    "cpuinfo": "grep -E '^(model name|Hardware|Model|processor|CPU part)' /proc/cpuinfo 2>/dev/null",
    "meminfo": "grep -E '^(MemTotal|MemFree|MemAvailable|SwapTotal|SwapFree):' /proc/meminfo",
    "df": "df -Pk / 2>/dev/null | tail -n +2",
    "model": "tr -d '\\000' < /proc/device-tree/model 2>/dev/null",
    "tegra": "cat /etc/nv_tegra_release 2>/dev/null",
    "gpu": "nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits 2>/dev/null",
    "docker": "docker --version 2>/dev/null",
    "python": "python3 --version 2>&1 | grep -i python",
    "addr": "ip -o addr show 2>/dev/null",
    "route": "ip -o -4 route show default 2>/dev/null",
    "mac": "for i in /sys/class/net/*; do echo \"${i##*/} $(cat $i/address 2>/dev/null)\"; done",
    "thermal": "for z in /sys/class/thermal/thermal_zone*; do "
               "[ -r $z/temp ] && echo \"$(cat $z/type 2>/dev/null) $(cat $z/temp)\"; done",
    "uptime": "cat /proc/uptime",
}
FACTS_SCRIPT = "; ".join(f"echo '{MARK}{name}'; {{ {cmd}; }}" for name, cmd in SECTIONS.items())

# L4T (Jetson Linux) release -> JetPack; the pairs NVIDIA published.
L4T_TO_JETPACK = {
    "32.4.3": "4.4", "32.4.4": "4.4.1", "32.5.0": "4.5", "32.5.1": "4.5.1", "32.6.1": "4.6",
    "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3", "32.7.4": "4.6.4",
    "32.7.5": "4.6.5", "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1",
    "35.4.1": "5.1.2", "35.5.0": "5.1.3", "35.6.0": "5.1.4", "36.2.0": "6.0 DP",
    "36.3.0": "6.0", "36.4.0": "6.1", "36.4.3": "6.2",
}


def split_sections(text: str) -> dict[str, str]:
    """``@@@ name`` blocks of the script's output -> name -> text."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(MARK):
            current = out.setdefault(line[len(MARK):].strip(), [])
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v).strip() for k, v in out.items()}


def parse_os_release(text: str) -> dict[str, Any]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"').strip("'")
    version = values.get("VERSION_ID", "")
    like = (values.get("ID_LIKE", "") + " " + values.get("ID", "")).lower()
    family = next((f for k, f in (("debian", "Debian"), ("rhel", "RedHat"), ("fedora", "RedHat"),
                                   ("suse", "Suse"), ("arch", "Archlinux"), ("alpine", "Alpine"))
                   if k in like.split()), values.get("NAME", ""))
    name = values.get("NAME", "")
    distribution = {"Debian GNU/Linux": "Debian"}.get(name, name.split(" ")[0] if name else "")
    return {"ansible_distribution": distribution,
            "ansible_distribution_version": version,
            "ansible_distribution_major_version": version.split(".")[0] if version else "",
            "ansible_distribution_release": values.get("VERSION_CODENAME", ""),
            "ansible_os_family": family,
            "collab_os_pretty": values.get("PRETTY_NAME", "")}


def parse_meminfo(text: str) -> dict[str, Any]:
    kib = {m[0]: int(m[1]) for m in re.findall(r"^(\w+):\s+(\d+)", text, re.M)}
    mb = {k: v // 1024 for k, v in kib.items()}
    return {"ansible_memtotal_mb": mb.get("MemTotal"), "ansible_memfree_mb": mb.get("MemFree"),
            "collab_memavailable_mb": mb.get("MemAvailable"),
            "ansible_swaptotal_mb": mb.get("SwapTotal"), "ansible_swapfree_mb": mb.get("SwapFree")}


def parse_cpuinfo(text: str, nproc: str) -> dict[str, Any]:
    models = re.findall(r"^model name\s*:\s*(.+)$", text, re.M)
    # Arm boards without "model name": the SoC ("Hardware"), else the board ("Model").
    hardware = re.findall(r"^Hardware\s*:\s*(.+)$", text, re.M) or \
        re.findall(r"^Model\s*:\s*(.+)$", text, re.M)
    count = int(nproc) if nproc.strip().isdigit() else len(re.findall(r"^processor", text, re.M))
    model = models[0].strip() if models else (hardware[0].strip() if hardware else "")
    return {"ansible_processor": [model] if model else [], "ansible_processor_vcpus": count,
            "ansible_processor_nproc": count}


def parse_df(text: str) -> dict[str, Any]:
    mounts = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1].isdigit():
            mounts.append({"mount": parts[5], "device": parts[0],
                           "size_total": int(parts[1]) * 1024,
                           "size_available": int(parts[3]) * 1024})
    root = next((m for m in mounts if m["mount"] == "/"), None)
    return {"ansible_mounts": mounts,
            "collab_disk_total_gb": round(root["size_total"] / 1e9, 1) if root else None,
            "collab_disk_free_gb": round(root["size_available"] / 1e9, 1) if root else None}


def parse_board(model: str, tegra: str) -> dict[str, Any]:
    """Board from the device tree (Raspberry Pi, Jetson) and the Jetson L4T release.

    ``/etc/nv_tegra_release`` reads ``# R35 (release), REVISION: 4.1, ...``: L4T 35.4.1.
    """
    model = model.replace("\x00", "").strip()
    out: dict[str, Any] = {"collab_board_model": model or None}
    if model.startswith("Raspberry Pi"):
        out["collab_board_family"] = "rpi"
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", tegra)
    if match:
        revision = match.group(2)
        l4t = f"{match.group(1)}.{revision if '.' in revision else revision + '.0'}"
        out.update({"collab_board_family": "jetson", "collab_l4t_release": l4t,
                    "collab_jetpack": L4T_TO_JETPACK.get(l4t)})
        board = re.search(r"BOARD:\s*([\w-]+)", tegra)
        if board:
            out["collab_tegra_board"] = board.group(1)
    elif "jetson" in model.lower():
        out["collab_board_family"] = "jetson"
    return out


def parse_addresses(addr: str, route: str, macs: str) -> dict[str, Any]:
    v4: list[str] = []
    v6: list[str] = []
    for m in re.finditer(r"^\d+:\s+(\S+)\s+(inet6?)\s+([^/\s]+)", addr, re.M):
        iface, family, ip = m.groups()
        if iface == "lo":
            continue
        (v6 if family == "inet6" else v4).append(ip)
    mac_of = dict(line.split(None, 1) for line in macs.splitlines() if len(line.split()) == 2)
    interfaces = sorted(mac_of)
    default: dict[str, Any] = {}
    m = re.search(r"dev\s+(\S+)", route)
    if m:
        iface = m.group(1)
        ip = re.search(rf"^\d+:\s+{re.escape(iface)}\s+inet\s+([^/\s]+)", addr, re.M)
        default = {"interface": iface, "address": ip.group(1) if ip else None,
                   "macaddress": mac_of.get(iface)}
    return {"ansible_all_ipv4_addresses": v4, "ansible_all_ipv6_addresses": v6,
            "ansible_interfaces": interfaces, "ansible_default_ipv4": default,
            "collab_macs": {i: mac for i, mac in mac_of.items() if i != "lo"}}


def parse_thermal(text: str) -> dict[str, Any]:
    temps: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.rsplit(None, 1)
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            name = parts[0] or f"zone{len(temps)}"
            while name in temps:
                name += "_"
            temps[name] = int(parts[1]) / 1000.0
    return {"collab_temperatures_c": temps,
            "collab_temperature_max_c": max(temps.values()) if temps else None}


def _version(text: str) -> str | None:
    m = re.search(r"(\d+\.\d+(?:\.\d+)?)", text)
    return m.group(1) if m else None


def parse_facts(output: str) -> dict[str, Any]:
    """The whole script output -> Ansible-named facts (pure; tested on captured outputs)."""
    s = split_sections(output)
    uname = (s.get("uname", "").splitlines() + ["", "", "", ""])[:4]
    machine = uname[2]
    arch = {"aarch64": "aarch64", "arm64": "aarch64", "x86_64": "x86_64"}.get(machine, machine)
    facts: dict[str, Any] = {
        "ansible_system": uname[0], "ansible_kernel": uname[1], "ansible_machine": machine,
        "ansible_architecture": arch, "ansible_hostname": uname[3].split(".")[0],
        "ansible_nodename": uname[3], "ansible_fqdn": s.get("hostname_f") or uname[3],
    }
    facts.update(parse_os_release(s.get("os_release", "")))
    facts.update(parse_cpuinfo(s.get("cpuinfo", ""), s.get("nproc", "")))
    facts.update(parse_meminfo(s.get("meminfo", "")))
    facts.update(parse_df(s.get("df", "")))
    facts.update(parse_board(s.get("model", ""), s.get("tegra", "")))
    facts.update(parse_addresses(s.get("addr", ""), s.get("route", ""), s.get("mac", "")))
    facts.update(parse_thermal(s.get("thermal", "")))
    gpus = [line.split(",")[0].strip() for line in s.get("gpu", "").splitlines() if line.strip()]
    if not gpus and facts.get("collab_board_family") == "jetson":
        gpus = ["integrated (Tegra)"]
    facts["collab_gpus"] = gpus
    facts["collab_docker_version"] = _version(s.get("docker", ""))
    facts["ansible_python_version"] = _version(s.get("python", ""))
    uptime = s.get("uptime", "").split()
    facts["ansible_uptime_seconds"] = int(float(uptime[0])) if uptime else None
    facts["collab_arch"] = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf"}.get(arch, arch)
    if facts.get("collab_board_family") == "jetson":
        facts["collab_arch"] = "jetson"
    return facts


def gather(transport: Any, timeout: float = 30) -> dict[str, Any]:
    """Facts of the device behind ``transport`` (any transport with ``run``)."""
    from pytest_collab.errors import TransportError
    result = transport.run(FACTS_SCRIPT, timeout=timeout)
    if result.error:
        raise TransportError(transport.device.name, f"fact gathering failed: {result.error}")
    return parse_facts(result.stdout)


def gather_local(timeout: float = 30) -> dict[str, Any]:
    """Facts of this machine (the controller), with the same script."""
    proc = subprocess.run(["sh", "-c", FACTS_SCRIPT], capture_output=True, text=True,
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
