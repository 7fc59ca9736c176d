"""The one shell script that collects a device's raw facts in one SSH round trip.

It only reads (files under /proc, /sys, /etc and a few read-only commands) and prints
``@@@ name`` blocks; every rule that turns the text into Ansible's facts lives on the
controller (``facts_system``, ``facts_hardware``, ``facts_network``), so captured
outputs of real boards test it. POSIX sh and busybox are enough; python3 is used only
where Ansible's answer comes from Python itself (``socket.getfqdn``, the interpreter).
Each command reads what Ansible's fact modules read (module_utils/facts/*/linux.py).
"""
from __future__ import annotations

MARK = "@@@ "

# name -> shell; the name is the block the parsers ask for.
SECTIONS: dict[str, str] = {
    "uname": "uname -s; uname -r; uname -m; uname -n; uname -v",
    "py": "{python} -c 'import json, platform, socket, ssl, sys; print(json.dumps({"
          "\"fqdn\": socket.getfqdn(), \"executable\": sys.executable, "
          "\"version_info\": list(sys.version_info), \"type\": sys.implementation.name, "
          "\"bits\": platform.architecture()[0], \"has_sslcontext\": hasattr(ssl, \"SSLContext\"), "
          "\"loadavg\": list(__import__(\"os\").getloadavg())}))'"
          " 2>/dev/null",
    "hostname_f": "hostname -f 2>/dev/null || hostname",
    "long_bit": "getconf LONG_BIT 2>/dev/null",
    "os_release": "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null",
    "debian_version": "cat /etc/debian_version 2>/dev/null",
    "lsb_release": "lsb_release -a 2>/dev/null",
    "lsb_file": "cat /etc/lsb-release 2>/dev/null",
    "machine_id": "cat /var/lib/dbus/machine-id 2>/dev/null || cat /etc/machine-id 2>/dev/null",
    "nproc": "nproc 2>/dev/null || getconf _NPROCESSORS_ONLN",
    "cpuinfo": "cat /proc/cpuinfo 2>/dev/null",
    "xen": "[ -e /proc/xen ] && echo proc_xen; cat /sys/hypervisor/type 2>/dev/null; "
           "cat /proc/xen/capabilities 2>/dev/null",
    "meminfo": "cat /proc/meminfo",
    "mtab": "cat /etc/mtab 2>/dev/null || cat /proc/mounts",
    # statvfs of each mount Ansible keeps (a device path or host:/path, fstype not none):
    # %S fragment size, %s block size, %b blocks, %f free, %a available, %c files, %d free files
    "statvfs": "while read -r dev mnt fs rest; do case \"$dev\" in /*|\\\\*|*:/*) ;; *) continue;; esac; "
               "[ \"$fs\" = none ] && continue; "
               "echo \"$mnt $(stat -f -c '%S %s %b %f %a %c %d' \"$mnt\" 2>/dev/null)\"; "
               "done < $( [ -e /etc/mtab ] && echo /etc/mtab || echo /proc/mounts)",
    "findmnt": "findmnt --list --noheadings --notruncate 2>/dev/null",
    "lsblk": "lsblk --list --noheadings --paths --output NAME,UUID --exclude 2 2>/dev/null",
    "udev_uuid": "command -v udevadm >/dev/null && while read -r dev rest; do case \"$dev\" in /dev/*) "
                 "echo \"$dev $(udevadm info --query property --name \"$dev\" 2>/dev/null "
                 "| sed -n 's/^ID_FS_UUID=//p')\";; esac; done < /proc/mounts",
    # block devices: one "path key value" line per sysfs file Ansible reads
    "blockdevs": "for b in /sys/block/*; do [ -e \"$b\" ] || continue; n=${b##*/}; "
                 "echo \"$n link $(readlink \"$b\")\"; "
                 "for k in device/vendor device/model device/sas_address device/sas_device_handle "
                 "device/serial removable queue/discard_max_hw_bytes queue/discard_granularity "
                 "queue/rotational queue/scheduler queue/logical_block_size queue/hw_sector_size size; do "
                 "[ -r \"$b/$k\" ] && echo \"$n $k $(cat \"$b/$k\" 2>/dev/null)\"; done; "
                 "for h in \"$b\"/holders/dm-*; do [ -e \"$h\" ] && echo \"$n holder ${h##*/} "
                 "$(cat \"$h/dm/name\" 2>/dev/null)\"; done; "
                 "for p in \"$b\"/\"$n\"*; do [ -d \"$p\" ] || continue; q=${p##*/}; "
                 "echo \"$n part $q $(cat \"$p/start\" 2>/dev/null) $(cat \"$p/size\" 2>/dev/null)\"; "
                 "for h in \"$p\"/holders/dm-*; do [ -e \"$h\" ] && echo \"$n partholder $q ${h##*/} "
                 "$(cat \"$h/dm/name\" 2>/dev/null)\"; done; done; done",
    "disklinks": "for d in by-id by-uuid by-label; do for l in /dev/disk/$d/*; do [ -L \"$l\" ] && "
                 "echo \"$d ${l##*/} $(readlink \"$l\")\"; done; done; "
                 "for s in /sys/block/*/slaves/*; do [ -e \"$s\" ] && echo \"slave $s\"; done",
    "lspci": "lspci -D 2>/dev/null",
    "dmi": "[ -e /sys/devices/virtual/dmi/id/product_name ] && echo sysfs && "
           "for k in bios_date bios_vendor bios_version board_asset_tag board_name board_serial "
           "board_vendor board_version chassis_asset_tag chassis_serial chassis_vendor chassis_version "
           "chassis_type product_name product_serial product_uuid product_version sys_vendor "
           "product_family; do [ -r /sys/devices/virtual/dmi/id/$k ] && "
           "echo \"$k $(cat /sys/devices/virtual/dmi/id/$k 2>/dev/null)\"; done",
    "model": "tr -d '\\000' < /proc/device-tree/model 2>/dev/null",
    "tegra": "cat /etc/nv_tegra_release 2>/dev/null",
    "gpu": "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader,nounits "
           "2>/dev/null",
    "virt": "cat /proc/1/cgroup 2>/dev/null | sed 's/^/cgroup /'; "
            "tr '\\000' '\\n' < /proc/1/environ 2>/dev/null | grep '^container=' | sed 's/^/environ /'; "
            "for f in /proc/vz /proc/lve /proc/bc /.dockerenv /.dockerinit /dev/kvm /proc/xen; do "
            "[ -e $f ] && echo \"exists $f\"; done; "
            "[ -s /run/systemd/container ] && echo \"systemd $(cat /run/systemd/container)\"; "
            "grep '^VxID:' /proc/self/status 2>/dev/null | sed 's/^/status /'; "
            "cut -d' ' -f1 /proc/modules 2>/dev/null | sed 's/^/module /'",
    "docker": "docker --version 2>/dev/null",
    "python": "{python} --version 2>&1 | grep -i python",
    "ifaces": "for i in $(ls -U /sys/class/net 2>/dev/null || ls /sys/class/net); do p=/sys/class/net/$i; "
              "[ -d $p ] || continue; "
              "for k in ifindex address mtu operstate type speed flags bridge/bridge_id bridge/stp_state "
              "bonding/slaves bonding/mode bonding/miimon bonding/lacp_rate bonding/primary "
              "bonding/all_slaves_active bonding_slave/perm_hwaddr; do "
              "[ -r $p/$k ] && echo \"$i $k $(cat $p/$k 2>/dev/null)\"; done; "
              "[ -e $p/bridge ] && echo \"$i is_bridge $( (ls -U $p/brif || ls $p/brif) 2>/dev/null | tr '\\n' ' ')\"; "
              "[ -e $p/bonding ] && echo \"$i is_bonding\"; "
              "[ -e $p/device ] && echo \"$i pciid $(readlink $p/device)\"; "
              "[ -e $p/device/driver/module ] && echo \"$i module $(readlink -f $p/device/driver/module)\"; "
              "done",
    "addr_primary": "ip -o addr show primary 2>/dev/null || ip -o addr show 2>/dev/null",
    "addr_secondary": "ip -o addr show secondary 2>/dev/null",
    "local_routes": "ip -4 route show table local; ip -6 route show table local",
    "route4": "ip -4 route get 8.8.8.8 2>/dev/null",
    "route6": "ip -6 route get 2404:6800:400a:800::1012 2>/dev/null",
    "resolv": "cat /etc/resolv.conf",
    "user": "u=$(id -un); echo \"$u $(id -ru) $(id -u) $(id -rg)\"; getent passwd \"$u\" || grep \"^$u:\" /etc/passwd",
    "cmdline": "cat /proc/cmdline",
    "loadavg": "cat /proc/loadavg",
    "fips": "cat /proc/sys/crypto/fips_enabled",
    "apparmor": "[ -e /sys/kernel/security/apparmor ] && echo yes || echo no",
    "ssh_keys": "for f in /etc/ssh/ssh_host_*_key.pub /etc/openssh/ssh_host_*_key.pub /etc/ssh_host_*_key.pub; do "
                "[ -r \"$f\" ] && echo \"$f $(cat \"$f\")\"; done",
    "date": "LC_ALL=C date '+%Y %m %A %w %W %d %H %M %S %s %N %Z %z'",
    "thermal": "for z in /sys/class/thermal/thermal_zone*; do "
               "[ -r $z/temp ] && echo \"$(cat $z/type 2>/dev/null) $(cat $z/temp)\"; done",
    "uptime": "cat /proc/uptime",
}


def script(python: str = "python3") -> str:
    """The script for a device whose interpreter is ``python`` (its profile's ``python``)."""
    import shlex
    return "; ".join(f"echo '{MARK}{name}'; {{ {cmd.replace('{python}', shlex.quote(python))}; }} 2>/dev/null"
                     for name, cmd in SECTIONS.items())


SCRIPT = script()


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
