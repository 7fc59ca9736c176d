"""System facts (platform, distribution, lsb, date/time, DMI, virtualization) from raw text.

Each function follows the rule of Ansible's own collector of the same name
(``ansible/module_utils/facts/system/*.py``, ``virtual/linux.py``, the DMI part of
``hardware/linux.py``), so a device reads the same under ``ansible -m setup`` and
``collab facts``. Pure functions: text in, fact dict (without the ``ansible_`` prefix) out;
a fact whose source is missing is left out rather than guessed.
"""
from __future__ import annotations

import datetime
import json
import re
from typing import Any

OS_FAMILY_MAP = {
    "RedHat": ("RedHat", "RHEL", "Fedora", "CentOS", "Scientific", "OracleLinux", "Amazon", "Amzn",
               "AlmaLinux", "Rocky", "EulerOS", "openEuler", "CloudLinux", "Redhat"),
    "Debian": ("Debian", "Ubuntu", "Raspbian", "Neon", "KDE neon", "Linux Mint", "SteamOS", "Devuan",
               "Kali", "Cumulus Linux", "Pop!_OS", "Parrot", "Uos", "Deepin", "OSMC",
               "Linux Mint Debian Edition"),
    "Suse": ("SuSE", "SLES", "SLED", "openSUSE", "openSUSE Tumbleweed", "openSUSE Leap", "Opensuse"),
    "Archlinux": ("Archlinux", "Antergos", "Manjaro"),
    "Gentoo": ("Gentoo", "Funtoo"),
    "Alpine": ("Alpine",),
}
OS_FAMILY = {name: family for family, names in OS_FAMILY_MAP.items() for name in names}
# distro's normalisation of os-release IDs, then Ansible's own renames
NORMALIZED_ID = {"ol": "oracle", "opensuse-leap": "opensuse"}
RENAMED = {"Amzn": "Amazon", "Rhel": "Redhat", "": "OtherLinux"}


def key_values(text: str) -> dict[str, str]:
    """``KEY=value`` lines (os-release, lsb-release) with shell quotes removed."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            out[key.strip()] = value.strip().strip("\"'")
    return out


def parse_platform(uname: str, py: str, long_bit: str, hostname_f: str, machine_id: str) -> dict[str, Any]:
    """platform.py: system, kernel, machine, architecture, userspace bits/arch, fqdn, domain."""
    lines = (uname.splitlines() + [""] * 5)[:5]
    system, kernel, machine, node, kernel_version = (x.strip() for x in lines)
    facts: dict[str, Any] = {"system": system, "kernel": kernel, "kernel_version": kernel_version,
                             "machine": machine, "nodename": node, "hostname": node.split(".")[0],
                             "architecture": "i386" if re.search(r"i([3456]86|86pc)", machine) else machine}
    info = py_info(py)
    fqdn = info.get("fqdn") or hostname_f.strip() or node
    facts["fqdn"] = fqdn
    facts["domain"] = ".".join(fqdn.split(".")[1:])
    bits = str(info.get("bits", "")).replace("bit", "") or long_bit.strip()
    if bits:
        facts["userspace_bits"] = bits
    if machine == "x86_64" or facts["architecture"] == "i386":
        arch = {"64": "x86_64", "32": "i386"}.get(bits)
        if arch:
            facts["userspace_architecture"] = arch
    if info.get("version_info"):
        major, minor, micro, level, serial = info["version_info"][:5]
        facts["python_version"] = f"{major}.{minor}.{micro}"
        facts["python"] = {"executable": info.get("executable"), "has_sslcontext": info.get("has_sslcontext"),
                           "type": {"cpython": "cpython"}.get(info.get("type", ""), info.get("type")),
                           "version": {"major": major, "minor": minor, "micro": micro,
                                       "releaselevel": level, "serial": serial},
                           "version_info": [major, minor, micro, level, serial]}
    if machine_id.strip():
        facts["machine_id"] = machine_id.strip().splitlines()[0]
    return facts


def py_info(text: str) -> dict[str, Any]:
    """The device interpreter's JSON line (fqdn, version, bits, load); {} without python3."""
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _release_version(text: str) -> str:
    """distro's version out of a 'Name 12.1 (codename)' description."""
    m = re.search(r"(?:^|\s)(\d[\d.]*)(?:\s|$|\()", text)
    return m.group(1) if m else ""


def parse_distribution(os_release: str, debian_version: str, lsb: dict[str, str]) -> dict[str, Any]:
    """distribution.py on Linux: the distro guess, then the os-release file parsers.

    Raspbian is reported as ``Debian`` (Ansible's Debian parser matches it); Debian's
    version takes the most precise of os-release and /etc/debian_version (``12.11``).
    """
    osr = key_values(os_release)
    if not osr:
        return {}
    os_id = osr.get("ID", "").lower()
    os_id = NORMALIZED_ID.get(os_id, os_id)
    name = os_id.capitalize()
    name = RENAMED.get(name, name)
    debian_like = os_id == "debian" or "debian" in osr.get("ID_LIKE", "").split()
    candidates = [osr.get("VERSION_ID", ""), lsb.get("release", ""),
                  _release_version(osr.get("PRETTY_NAME", "")), _release_version(lsb.get("description", ""))]
    if debian_like:
        candidates.append(debian_version.strip().splitlines()[0] if debian_version.strip() else "")
    version = next((v for v in candidates if v), "")
    if os_id in ("debian", "centos"):
        for v in candidates:
            if v.count(".") > version.count(".") or version == "":
                version = v
        if os_id == "centos":
            version = ".".join(version.split(".")[:2])
    codename = osr.get("VERSION_CODENAME") or osr.get("UBUNTU_CODENAME")
    if codename is None:
        m = re.search(r"\((\D+)\)|,\s*(\D+)", osr.get("VERSION", ""))
        codename = (m.group(1) or m.group(2)) if m else (lsb.get("codename") or None)
    facts: dict[str, Any] = {"distribution": name or "NA", "distribution_version": version or "NA",
                             "distribution_release": "NA" if codename is None else codename}
    facts["distribution_major_version"] = facts["distribution_version"].split(".")[0] or "NA"
    facts.update(_os_release_parsers(os_release, debian_version, facts))
    facts["os_family"] = OS_FAMILY.get(facts["distribution"]) or facts["distribution"]
    return facts


def _os_release_parsers(data: str, debian_version: str, guess: dict[str, Any]) -> dict[str, Any]:
    """The /etc/os-release entries of Ansible's OSDIST_LIST, first match wins."""
    found = {"distribution_file_path": "/etc/os-release", "distribution_file_parsed": True}
    if "Arch Linux" in data:
        return {**found, "distribution": "Archlinux", "distribution_file_variety": "Archlinux"}
    out: dict[str, Any] = {}
    if "Debian" in data or "Raspbian" in data:
        out["distribution"] = "Debian"
        m = re.search(r"PRETTY_NAME=[^(]+ \(?([^)]+?)\)", data)
        if m:
            out["distribution_release"] = m.group(1)
        for line in debian_version.splitlines():
            m = re.search(r"(\d+)\.(\d+)", line.strip())
            if m:
                out["distribution_minor_version"] = m.group(2)
    elif "Ubuntu" in data:
        out["distribution"] = "Ubuntu"
    elif "Devuan" in data:
        out["distribution"] = "Devuan"
        version = re.search(r"VERSION_ID=\"(.*)\"", data)
        if version:
            out["distribution_version"] = out["distribution_major_version"] = version.group(1)
    elif "Mint" in data:
        out["distribution"] = "Linux Mint"
        version = re.search(r"VERSION_ID=\"(.*)\"", data)
        if version:
            out["distribution_version"] = version.group(1)
            out["distribution_major_version"] = version.group(1).split(".")[0]
    if out:
        return {**found, **out, "distribution_file_variety": "Debian"}
    # the catch-all 'NA' parser: NAME= is the distribution, VERSION= fills a missing version
    na: dict[str, Any] = {**found, "distribution_file_variety": "NA"}
    for line in data.splitlines():
        m = re.search("^NAME=(.*)", line)
        if m:
            na["distribution"] = m.group(1).strip('"')
        m = re.search("^VERSION=(.*)", line)
        if m and guess["distribution_version"] == "NA":
            na["distribution_version"] = m.group(1).strip('"')
    return na


def parse_lsb(lsb_release: str, lsb_file: str) -> dict[str, Any]:
    """lsb.py: ``lsb_release -a`` first, else /etc/lsb-release; quotes stripped."""
    out: dict[str, str] = {}
    labels = {"LSB Version:": "release", "Distributor ID:": "id", "Description:": "description",
              "Release:": "release", "Codename:": "codename"}
    for line in lsb_release.splitlines():
        if ":" in line:
            for label, key in labels.items():
                if label in line:
                    out[key] = line.split(":", 1)[1].strip()
                    break
    if not out:
        names = {"DISTRIB_ID": "id", "DISTRIB_RELEASE": "release", "DISTRIB_DESCRIPTION": "description",
                 "DISTRIB_CODENAME": "codename"}
        for line in lsb_file.splitlines():
            if "=" in line:
                found = next((k for n, k in names.items() if n in line), None)
                if found:
                    out[found] = line.split("=", 1)[1].strip()
    if "release" in out:
        out["major_release"] = out["release"].split(".")[0]
    return {k: v.strip("'\"\\") if v else v for k, v in out.items()}


def parse_date_time(date: str) -> dict[str, Any]:
    """date_time.py from one ``date`` call on the device (its clock and its time zone)."""
    parts = date.split()
    if len(parts) < 11 or not parts[9].isdigit():
        return {}
    year, month, weekday, wday, week, day, hour, minute, second, epoch, nanos = parts[:11]
    tz = parts[11] if len(parts) > 12 else ""
    offset = parts[-1] if len(parts) > 12 else ""
    micro = nanos[:6] if nanos.isdigit() else "000000"
    utc = datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc)
    return {"year": year, "month": month, "weekday": weekday, "weekday_number": wday,
            "weeknumber": week, "day": day, "hour": hour, "minute": minute, "second": second,
            "epoch": epoch, "epoch_int": epoch, "date": f"{year}-{month}-{day}",
            "time": f"{hour}:{minute}:{second}",
            "iso8601_micro": utc.strftime("%Y-%m-%dT%H:%M:%S.") + micro + "Z",
            "iso8601": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "iso8601_basic": f"{year}{month}{day}T{hour}{minute}{second}{micro}",
            "iso8601_basic_short": f"{year}{month}{day}T{hour}{minute}{second}",
            "tz": tz, "tz_offset": offset}


FORM_FACTOR = ["Unknown", "Other", "Unknown", "Desktop", "Low Profile Desktop", "Pizza Box",
               "Mini Tower", "Tower", "Portable", "Laptop", "Notebook", "Hand Held", "Docking Station",
               "All In One", "Sub Notebook", "Space-saving", "Lunch Box", "Main Server Chassis",
               "Expansion Chassis", "Sub Chassis", "Bus Expansion Chassis", "Peripheral Chassis",
               "RAID Chassis", "Rack Mount Chassis", "Sealed-case PC", "Multi-system", "CompactPCI",
               "AdvancedTCA", "Blade", "Blade Enclosure", "Tablet", "Convertible", "Detachable",
               "IoT Gateway", "Embedded PC", "Mini PC", "Stick PC"]
DMI_FILES = {"bios_date": "bios_date", "bios_vendor": "bios_vendor", "bios_version": "bios_version",
             "board_asset_tag": "board_asset_tag", "board_name": "board_name", "board_serial": "board_serial",
             "board_vendor": "board_vendor", "board_version": "board_version",
             "chassis_asset_tag": "chassis_asset_tag", "chassis_serial": "chassis_serial",
             "chassis_vendor": "chassis_vendor", "chassis_version": "chassis_version",
             "form_factor": "chassis_type", "product_name": "product_name", "product_serial": "product_serial",
             "product_uuid": "product_uuid", "product_version": "product_version", "system_vendor": "sys_vendor"}


def dmi_files(dmi: str) -> dict[str, str]:
    lines = dmi.splitlines()
    return {k: v.strip() for k, _, v in (line.partition(" ") for line in lines[1:])} \
        if lines and lines[0] == "sysfs" else {}


def parse_dmi(dmi: str) -> dict[str, Any]:
    """DMI from /sys (unreadable files are 'NA', as Ansible says); boards without DMI
    (a Raspberry Pi, a Jetson) get 'NA' everywhere, like Ansible without dmidecode."""
    files = dmi_files(dmi)
    out = {}
    for key, name in DMI_FILES.items():
        value = files.get(name)
        if value is None:
            out[key] = "NA"
        elif key == "form_factor":
            out[key] = FORM_FACTOR[int(value)] if value.isdigit() and int(value) < len(FORM_FACTOR) \
                else f"unknown ({value})"
        else:
            out[key] = value
    return out


KVM_PRODUCTS = ("KVM", "KVM Server", "Bochs", "AHV", "CloudStack KVM Hypervisor")
KVM_VENDORS = ("QEMU", "Amazon EC2", "DigitalOcean", "Google", "Scaleway", "Nutanix")
SYS_VENDOR_TECH = {"oVirt": "oVirt", "KubeVirt": "KubeVirt", "Microsoft Corporation": "VirtualPC",
                   "Parallels Software International Inc.": "parallels", "OpenStack Foundation": "openstack"}
BIOS_TECH = {"Xen": "xen", "innotek GmbH": "virtualbox", "Amazon EC2": "kvm", "DigitalOcean": "kvm",
             "Hetzner": "kvm", "Linode": "kvm"}


def parse_virtualization(virt: str, dmi: str, cpuinfo: str, xen: str) -> dict[str, Any]:
    """virtual/linux.py in its order: containers, openvz, systemd, xen, DMI, cpuinfo,
    kernel modules, /dev/kvm; the first hit sets type and role, every hit adds a tech."""
    lines = [line.partition(" ") for line in virt.splitlines()]
    seen = [(k, v.strip()) for k, _, v in lines]     # in file order: the first hit names the type
    exists = {v for k, v in seen if k == "exists"}
    guest: set[str] = set()
    host: set[str] = set()
    found: dict[str, str] = {}

    def hit(tech: str, role: str | None, into: set[str] | None = None) -> None:
        (into if into is not None else host if role == "host" else guest).add(tech)
        if not found:
            found["type"] = tech
            if role:
                found["role"] = role
    for key, value in seen:
        if key == "cgroup":
            if re.search(r"/docker(/|-[0-9a-f]+\.scope)", value):
                hit("docker", "guest")
            if "/lxc/" in value or "/machine.slice/machine-lxc" in value:
                hit("lxc", "guest")
            if "/system.slice/containerd.service" in value:
                hit("containerd", "guest")
    for key, value in seen:
        if key == "environ":
            for tech in ("lxc", "podman"):
                if f"container={tech}" in value:
                    hit(tech, "guest")
            if re.search("^container=.", value):
                hit("container", "guest")
    if "/proc/vz" in exists and "/proc/lve" not in exists:
        hit("openvz", "host" if "/proc/bc" in exists else "guest")
    systemd = next((v for k, v in seen if k == "systemd"), "")
    if systemd:
        hit(systemd, "guest")
    if exists & {"/.dockerenv", "/.dockerinit"}:
        hit("docker", "guest")
    if guest & {"docker", "lxc", "podman", "openvz", "containerd"} or systemd:
        guest.add("container")
    if "/proc/xen" in exists:
        hit("xen", "host" if "control_d" in xen else "guest", host if "control_d" in xen else set())
    files = dmi_files(dmi)
    product, vendor = files.get("product_name"), files.get("sys_vendor")
    role = "guest" if not found else None
    if product in KVM_PRODUCTS:
        hit("kvm", role)
    if vendor in SYS_VENDOR_TECH:
        hit(SYS_VENDOR_TECH[vendor], role)
    if product and product.startswith("VMware"):
        hit("VMware", role)
    if product in ("OpenStack Compute", "OpenStack Nova"):
        hit("openstack", role)
    if files.get("bios_vendor") in BIOS_TECH:
        hit(BIOS_TECH[files["bios_vendor"]], role)
    if vendor in KVM_VENDORS:
        hit("kvm", role)
    if re.search(r"^model name.*QEMU Virtual CPU", cpuinfo, re.M):
        hit("kvm", "guest")
    modules = {v for k, v in seen if k == "module"}
    if "kvm" in modules:
        hit("kvm", "host")
    if "vboxdrv" in modules:
        hit("virtualbox", "host")
    if "virtio" in modules:
        hit("kvm", "guest", host)
    if "/dev/kvm" in exists:
        hit("kvm", "host")
    return {"virtualization_type": found.get("type", "NA"),
            "virtualization_role": found.get("role", "NA") if found else "NA",
            "virtualization_tech_guest": sorted(guest), "virtualization_tech_host": sorted(host)}
