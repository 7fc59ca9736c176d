"""Hardware facts (CPU, memory, mounts, block devices, board, GPU) from raw text.

The rules are those of Ansible's ``hardware/linux.py`` (read there, restated here), so
``ansible_processor`` is the same list of ``processor`` / vendor / model entries,
``ansible_memory_mb`` the same nested totals, ``ansible_mounts`` the same 16 keys.
What collab adds (board, L4T/JetPack, GPUs, temperatures) is named ``collab_*``.
Pure functions; keys whose source is missing are left out.
"""
from __future__ import annotations

import os
import re
from typing import Any

CPU_LIST_KEYS = ("model name", "Processor", "vendor_id", "cpu", "Vendor", "processor")

# L4T (Jetson Linux) release -> JetPack; the pairs NVIDIA published.
L4T_TO_JETPACK = {
    "32.4.3": "4.4", "32.4.4": "4.4.1", "32.5.0": "4.5", "32.5.1": "4.5.1", "32.6.1": "4.6",
    "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3", "32.7.4": "4.6.4",
    "32.7.5": "4.6.5", "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1",
    "35.4.1": "5.1.2", "35.5.0": "5.1.3", "35.6.0": "5.1.4", "36.2.0": "6.0 DP",
    "36.3.0": "6.0", "36.4.0": "6.1", "36.4.3": "6.2",
}


def parse_cpu(cpuinfo: str, architecture: str, nproc: str, xen: str = "") -> dict[str, Any]:
    """get_cpu_facts: the processor list, sockets (physical id / cpu cores), threads
    per core (siblings / cores), vcpus; Arm and Power count ``processor`` lines."""
    if not cpuinfo.strip():
        return {}
    is_xen = "proc_xen" in xen or xen.strip().splitlines()[:1] == ["xen"]
    processor: list[str] = []
    facts: dict[str, Any] = {}
    counts = {"vendor_id": 0, "model name": 0, "processor": 0}
    i = 0
    xen_paravirt = False
    physid: str = "0"
    coreid: str = "0"
    sockets: dict[str, int] = {}
    cores: dict[str, int] = {}
    for line in cpuinfo.splitlines():
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        if key == "flags":
            facts["flags"] = val.split()
            xen_paravirt = xen_paravirt or (is_xen and "vme" not in val.split())
        if key in CPU_LIST_KEYS:
            processor.append(val)
            if key in counts:
                counts[key] += 1
            i += 1
        elif key == "physical id":
            physid = val
            sockets.setdefault(physid, 1)
        elif key == "core id":
            coreid = val
            if coreid not in sockets:    # sic: Ansible tests sockets here
                cores[coreid] = 1
        elif key == "cpu cores":
            sockets[physid] = int(val)
        elif key == "siblings":
            cores[coreid] = int(val)
    if counts["vendor_id"] and counts["vendor_id"] == counts["model name"]:
        i = counts["vendor_id"]
    if architecture.startswith(("armv", "aarch", "ppc")):
        i = counts["processor"]
    facts["processor"] = processor
    if xen_paravirt:
        facts.update(processor_count=i, processor_cores=i, processor_threads_per_core=1,
                     processor_vcpus=i)
    else:
        facts["processor_count"] = len(sockets) if sockets else i
        first_socket = next(iter(sockets.values()), 0)
        facts["processor_cores"] = first_socket or 1
        first_core = next(iter(cores.values()), None)
        facts["processor_threads_per_core"] = round((first_core if first_core is not None else 1)
                                                    / facts["processor_cores"])
        facts["processor_vcpus"] = (facts["processor_threads_per_core"] * facts["processor_count"]
                                    * facts["processor_cores"])
    facts["processor_nproc"] = int(nproc) if nproc.strip().isdigit() else counts["processor"]
    return facts


def parse_memory(meminfo: str) -> dict[str, Any]:
    """get_memory_facts: ``*_mb`` for the four original keys and ``memory_mb``."""
    mb = {m[0].lower(): int(m[1]) // 1024 for m in re.findall(r"^(\w+):\s+(\d+)", meminfo, re.M)}
    if not mb:
        return {}
    facts: dict[str, Any] = {f"{k}_mb": mb[k] for k in ("memtotal", "swaptotal", "memfree", "swapfree")
                             if k in mb}

    def diff(a: int | None, b: int | None) -> int | None:
        return None if a is None or b is None else a - b
    nocache_free = None if None in (mb.get("cached"), mb.get("memfree"), mb.get("buffers")) \
        else mb["cached"] + mb["memfree"] + mb["buffers"]
    facts["memory_mb"] = {
        "real": {"total": mb.get("memtotal"), "used": diff(mb.get("memtotal"), mb.get("memfree")),
                 "free": mb.get("memfree")},
        "nocache": {"free": nocache_free, "used": diff(mb.get("memtotal"), nocache_free)},
        "swap": {"total": mb.get("swaptotal"), "free": mb.get("swapfree"),
                 "used": diff(mb.get("swaptotal"), mb.get("swapfree")), "cached": mb.get("swapcached")},
    }
    return facts


def _unescape(value: str) -> str:
    return re.sub(r"\\[0-9]{3}", lambda m: chr(int(m.group()[1:], 8)), value)


def parse_mounts(mtab: str, statvfs: str, findmnt: str, lsblk: str, udev: str) -> dict[str, Any]:
    """get_mount_facts: mtab entries of real devices (or host:/path), bind mounts marked
    as findmnt shows them, sizes from statvfs, the UUID from lsblk (else udev, else N/A)."""
    binds = {f[0] for f in (line.split() for line in findmnt.splitlines())
             if len(f) >= 2 and re.match(r".*\]", f[1])}
    uuids: dict[str, str] = {}
    for line in lsblk.splitlines():
        fields = line.strip().rsplit(None, 1)
        if len(fields) == 2:
            uuids.setdefault(fields[0].strip(), fields[1].strip())
    udev_uuids = {f[0]: f[1] for f in (line.split() for line in udev.splitlines()) if len(f) == 2}
    sizes: dict[str, list[int]] = {}
    for line in statvfs.splitlines():
        mount, *numbers = line.split()
        if len(numbers) == 7 and all(n.isdigit() for n in numbers):
            sizes[mount] = [int(n) for n in numbers]
    mounts: dict[str, dict[str, Any]] = {}      # by mount point: a later entry wins, as in Ansible
    for line in mtab.splitlines():
        fields = [_unescape(f) for f in line.split()]
        if len(fields) < 6:
            continue
        device, mount, fstype, options = fields[:4]
        if (not device.startswith(("/", "\\")) and ":/" not in device) or fstype == "none":
            continue
        info: dict[str, Any] = {"mount": mount, "device": device, "fstype": fstype, "options": options,
                                "dump": int(fields[4]), "passno": int(fields[5])}
        if mount in binds and "bind" not in options:
            info["options"] += ",bind"
        if mount in sizes:
            frsize, bsize, blocks, _bfree, bavail, files, ffree = sizes[mount]
            info.update(size_total=frsize * blocks, size_available=frsize * bavail, block_size=bsize,
                        block_total=blocks, block_available=bavail, block_used=blocks - bavail,
                        inode_total=files, inode_available=ffree, inode_used=files - ffree)
        info["uuid"] = uuids.get(device) or udev_uuids.get(device) or "N/A"
        mounts[mount] = info
    return {"mounts": list(mounts.values())}


def bytes_to_human(size: float) -> str:
    """Ansible's formatter: 1024-based, two decimals ('50.00 GB', '0.00 Bytes')."""
    for suffix, power in (("YB", 8), ("ZB", 7), ("EB", 6), ("PB", 5), ("TB", 4), ("GB", 3), ("MB", 2),
                          ("KB", 1)):
        if size >= 1024 ** power:
            return f"{size / 1024 ** power:.2f} {suffix}"
    return f"{size:.2f} Bytes"


def _links(disklinks: str) -> dict[str, dict[str, list[str]]]:
    kinds = {"by-id": "ids", "by-uuid": "uuids", "by-label": "labels"}
    out: dict[str, dict[str, set[str]]] = {k: {} for k in ("ids", "uuids", "labels", "masters")}
    for line in disklinks.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in kinds:
            out[kinds[parts[0]]].setdefault(os.path.basename(parts[2]), set()).add(parts[1])
        elif len(parts) == 2 and parts[0] == "slave":
            elements = parts[1].split("/")     # /sys/block/<master>/slaves/<dev>
            if len(elements) > 5:
                out["masters"].setdefault(elements[5], set()).add(elements[3])
    return {kind: {dev: sorted(names) for dev, names in found.items()} for kind, found in out.items()}


def parse_devices(blockdevs: str, disklinks: str, lspci: str) -> dict[str, Any]:
    """get_device_facts: one entry per /sys/block device with its partitions and links."""
    raw: dict[str, dict[str, Any]] = {}
    for line in blockdevs.splitlines():
        name, _, rest = line.partition(" ")
        key, _, value = rest.partition(" ")
        entry = raw.setdefault(name, {"parts": {}, "holders": [], "partholders": {}})
        if key == "part":
            part, *numbers = value.split()
            entry["parts"][part] = numbers
        elif key in ("holder", "partholder"):
            words = value.split()
            target = entry["holders"] if key == "holder" else \
                entry["partholders"].setdefault(words.pop(0) if words else "", [])
            if words:
                target.append(words[1] if len(words) > 1 else words[0])
        else:
            entry[key] = value.strip()
    if not raw:
        return {}
    links = _links(disklinks)
    wwn = {dev: name[4:] for dev, names in links["ids"].items() for name in names if name.startswith("wwn-")}
    devices = {}
    for name, e in raw.items():
        d: dict[str, Any] = {"virtual": 1, "links": {k: v.get(name, []) for k, v in links.items()}}
        for key in ("vendor", "model", "sas_address", "sas_device_handle"):
            d[key] = e.get(f"device/{key}")
        if e.get("device/serial"):
            d["serial"] = e["device/serial"]
        d["removable"] = e.get("removable")
        d["support_discard"] = "0" if e.get("queue/discard_max_hw_bytes") == "0" \
            else e.get("queue/discard_granularity")
        if name in wwn:
            d["wwn"] = wwn[name]
        d["partitions"] = {}
        for part, numbers in e["parts"].items():
            if not re.search("(" + re.escape(name) + r"[p]?\d+)", part):
                continue
            start = numbers[0] if numbers else 0
            sectors = int(numbers[1]) if len(numbers) > 1 else 0    # sysfs counts 512-byte sectors
            d["partitions"][part] = {
                "links": {k: v.get(part, []) for k, v in links.items()}, "start": start,
                "sectorsize": 512, "sectors": sectors, "size": bytes_to_human(float(sectors) * 512),
                "uuid": next(iter(links["uuids"].get(part, [])), None),
                "holders": e["partholders"].get(part, [])}
        d["rotational"] = e.get("queue/rotational")
        m = re.match(r".*?(\[(.*)\])", e.get("queue/scheduler", ""))
        d["scheduler_mode"] = m.group(2) if m else ""
        d["sectorsize"] = e.get("queue/logical_block_size") or e.get("queue/hw_sector_size") or 512
        size = e.get("size", "0")
        d["sectors"] = int(size) * 512 // int(d["sectorsize"]) if size.isdigit() else 0
        d["size"] = bytes_to_human(float(d["sectors"]) * float(d["sectorsize"]))
        d["host"] = ""
        pci = re.match(r".+/([a-f0-9]{4}:[a-f0-9]{2}:[0|1][a-f0-9]\.[0-7])/", e.get("link", ""))
        if pci and lspci:
            row = re.search("^" + re.escape(pci.group(1)) + r"\s(.*)$", lspci, re.M)
            if row:
                d["host"] = row.group(1)
        d["holders"] = e["holders"]
        devices[name] = d
    return {"devices": devices, "device_links": links}


def parse_board(model: str, tegra: str) -> dict[str, Any]:
    """Board from the device tree (Raspberry Pi, Jetson) and the Jetson L4T release.

    ``/etc/nv_tegra_release`` reads ``# R35 (release), REVISION: 4.1, ...``: L4T 35.4.1.
    """
    model = model.replace("\x00", "").strip()
    out: dict[str, Any] = {}
    if model:
        out["collab_board_model"] = model
    if model.startswith("Raspberry Pi"):
        out["collab_board_family"] = "rpi"
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", tegra)
    if match:
        revision = match.group(2)
        l4t = f"{match.group(1)}.{revision if '.' in revision else revision + '.0'}"
        out.update({"collab_board_family": "jetson", "collab_l4t_release": l4t})
        if l4t in L4T_TO_JETPACK:
            out["collab_jetpack"] = L4T_TO_JETPACK[l4t]
        board = re.search(r"BOARD:\s*([\w-]+)", tegra)
        if board:
            out["collab_tegra_board"] = board.group(1)
    elif "jetson" in model.lower():
        out["collab_board_family"] = "jetson"
    return out


def parse_gpus(nvidia_smi: str, board_family: str | None) -> dict[str, Any]:
    """GPUs from ``nvidia-smi`` (name, memory MiB, driver); a Jetson's integrated GPU
    has no nvidia-smi on older L4T, so its release file stands for it."""
    gpus = []
    for line in nvidia_smi.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if cells and cells[0]:
            gpu: dict[str, Any] = {"name": cells[0]}
            if len(cells) > 1 and cells[1].isdigit():
                gpu["memory_total_mb"] = int(cells[1])
            if len(cells) > 2 and cells[2]:
                gpu["driver_version"] = cells[2]
            gpus.append(gpu)
    if not gpus and board_family == "jetson":
        gpus = [{"name": "integrated (Tegra)"}]
    return {"collab_gpus": [g["name"] for g in gpus], "collab_gpu_devices": gpus}


def parse_thermal(text: str) -> dict[str, Any]:
    temps: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.rsplit(None, 1)
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            name = parts[0] or f"zone{len(temps)}"
            while name in temps:
                name += "_"
            temps[name] = int(parts[1]) / 1000.0
    out: dict[str, Any] = {"collab_temperatures_c": temps}
    if temps:
        out["collab_temperature_max_c"] = max(temps.values())
    return out
