"""Pure fact parsing on captured outputs: a Raspberry Pi 4 on Raspbian, a Jetson AGX Orin,
a two-socket server; CPU and distribution rules checked against Ansible's own code."""
from __future__ import annotations

import pytest

from pytest_collab.lan import facts, facts_hardware, facts_system

from .ansible_oracle import ansible_cpu, ansible_distribution

PI_CORE = """\
processor\t: {n}
model name\t: ARMv7 Processor rev 3 (v7l)
BogoMIPS\t: 108.00
Features\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32
CPU implementer\t: 0x41
CPU architecture: 7
CPU part\t: 0xd08

"""
PI_CPUINFO = "".join(PI_CORE.format(n=n) for n in range(4)) + (
    "Hardware\t: BCM2711\nRevision\t: c03114\nSerial\t\t: 100000001234abcd\n"
    "Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n")
ORIN_CPUINFO = "".join(f"processor\t: {n}\nBogoMIPS\t: 62.50\nFeatures\t: fp asimd evtstrm aes\n"
                       f"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU part\t: 0xd42\n\n" for n in range(12))
XEON_CPUINFO = "".join(
    f"processor\t: {n}\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz\n"
    f"physical id\t: {n // 8}\nsiblings\t: 8\ncore id\t: {(n % 8) // 2}\ncpu cores\t: 4\n"
    f"flags\t\t: fpu vme de pse tsc\n\n" for n in range(16))
RASPBIAN = """\
PRETTY_NAME="Raspbian GNU/Linux 11 (bullseye)"
NAME="Raspbian GNU/Linux"
VERSION_ID="11"
VERSION="11 (bullseye)"
VERSION_CODENAME=bullseye
ID=raspbian
ID_LIKE=debian
"""
DEBIAN = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""
UBUNTU = """\
NAME="Ubuntu"
VERSION="20.04.6 LTS (Focal Fossa)"
ID=ubuntu
ID_LIKE=debian
PRETTY_NAME="Ubuntu 20.04.6 LTS"
VERSION_ID="20.04"
VERSION_CODENAME=focal
UBUNTU_CODENAME=focal
"""


def capture(**sections: str) -> str:
    return "".join(f"@@@ {name}\n{text}\n" for name, text in sections.items())


RPI_OUTPUT = capture(
    uname="Linux\n6.1.21-v7l+\narmv7l\nrpi-01\n#1642 SMP Mon Apr  3 17:22:30 BST 2023",
    hostname_f="rpi-01.lab", long_bit="32", os_release=RASPBIAN, debian_version="11.7", nproc="4",
    cpuinfo=PI_CPUINFO,
    meminfo="MemTotal:        3884360 kB\nMemFree:         2998000 kB\nMemAvailable:    3400000 kB\n"
            "Buffers:           40000 kB\nCached:           300000 kB\nSwapCached:            0 kB\n"
            "SwapTotal:        102396 kB\nSwapFree:         102396 kB",
    mtab="/dev/root / ext4 rw,noatime 0 0\nproc /proc proc rw 0 0\n/dev/mmcblk0p1 /boot vfat rw 0 2",
    statvfs="/ 4096 4096 7589587 6000000 5700000 1900000 1800000\n/boot 512 512 524288 400000 400000 0 0",
    lsblk="/dev/mmcblk0\n/dev/mmcblk0p1 4BBD-D3E7\n/dev/mmcblk0p2 181f4b0b-c6ae-4a2c-8b3b-5b4e3ae1ac4e",
    model="Raspberry Pi 4 Model B Rev 1.4", python="Python 3.9.2",
    docker="Docker version 24.0.5, build ced0996",
    ifaces="lo ifindex 1\nlo address 00:00:00:00:00:00\nlo mtu 65536\nlo operstate unknown\nlo type 772\n"
           "eth0 ifindex 2\neth0 address dc:a6:32:01:02:03\neth0 mtu 1500\neth0 operstate up\neth0 type 1\n"
           "eth0 speed 1000\neth0 flags 0x1003\n"
           "wlan0 ifindex 3\nwlan0 address dc:a6:32:01:02:04\nwlan0 mtu 1500\nwlan0 operstate down\n"
           "wlan0 type 1\nwlan0 flags 0x1003\n"
           "br-lan ifindex 4\nbr-lan type 1\nbr-lan bridge/stp_state 0\nbr-lan is_bridge eth1 eth2 ",
    addr_primary="1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
                 "2: eth0    inet 192.168.1.21/24 brd 192.168.1.255 scope global dynamic noprefixroute eth0"
                 "\\       valid_lft 80000sec preferred_lft 70000sec\n"
                 "2: eth0    inet6 fe80::dea6:32ff:fe01:203/64 scope link \\       valid_lft forever",
    addr_secondary="2: eth0    inet 192.168.1.99/24 brd 192.168.1.255 scope global secondary eth0:1\\    x",
    route4="8.8.8.8 via 192.168.1.1 dev eth0 src 192.168.1.21 uid 1000 \n    cache ",
    date="2026 12 Wednesday 3 48 02 09 41 18 1796200878 614766123 CET +0100",
    thermal="cpu-thermal 48686", uptime="12345.67 40000.00")


def test_raspberry_pi_capture():
    got = facts.parse_facts(RPI_OUTPUT)
    assert got["ansible_architecture"] == "armv7l" and got["collab_arch"] == "armhf"
    assert "ansible_userspace_architecture" not in got and got["ansible_userspace_bits"] == "32"
    assert got["ansible_hostname"] == "rpi-01" and got["ansible_fqdn"] == "rpi-01.lab"
    assert got["ansible_domain"] == "lab"
    # Raspbian reads as Debian, as Ansible's Debian parser says
    assert (got["ansible_distribution"], got["ansible_os_family"]) == ("Debian", "Debian")
    assert got["ansible_distribution_version"] == "11" and got["ansible_distribution_minor_version"] == "7"
    assert got["ansible_processor"] == [x for n in range(4) for x in (str(n), "ARMv7 Processor rev 3 (v7l)")]
    assert (got["ansible_processor_count"], got["ansible_processor_cores"],
            got["ansible_processor_threads_per_core"], got["ansible_processor_vcpus"]) == (4, 1, 1, 4)
    assert got["ansible_memtotal_mb"] == 3793 and got["ansible_swaptotal_mb"] == 99
    assert got["ansible_memory_mb"]["nocache"] == {"free": 2927 + 39 + 292, "used": 3793 - 3258}
    assert got["collab_board_model"] == "Raspberry Pi 4 Model B Rev 1.4" and got["collab_board_family"] == "rpi"
    assert got["collab_docker_version"] == "24.0.5" and got["ansible_python_version"] == "3.9.2"
    root, boot = got["ansible_mounts"]
    assert (root["mount"], root["device"], root["uuid"]) == ("/", "/dev/root", "N/A")
    assert root["size_total"] == 4096 * 7589587 and root["block_used"] == 7589587 - 5700000
    assert (boot["uuid"], boot["passno"], boot["size_available"]) == ("4BBD-D3E7", 2, 512 * 400000)
    assert got["ansible_interfaces"] == ["lo", "eth0", "wlan0", "br-lan", "eth0_1"]
    assert got["ansible_default_ipv4"] == {
        "address": "192.168.1.21", "alias": "eth0", "broadcast": "192.168.1.255", "gateway": "192.168.1.1",
        "interface": "eth0", "macaddress": "dc:a6:32:01:02:03", "mtu": 1500, "netmask": "255.255.255.0",
        "network": "192.168.1.0", "prefix": "24", "type": "ether"}
    eth0 = got["ansible_eth0"]
    assert eth0["ipv6"] == [{"address": "fe80::dea6:32ff:fe01:203", "prefix": "64", "scope": "link"}]
    assert eth0["ipv4_secondaries"][0]["address"] == "192.168.1.99" and eth0["speed"] == 1000
    assert got["ansible_eth0_1"]["ipv4_secondaries"][0]["address"] == "192.168.1.99"
    assert got["ansible_wlan0"]["active"] is False and "ipv4" not in got["ansible_wlan0"]
    assert got["ansible_br_lan"]["type"] == "bridge" and "br-lan" in got["ansible_interfaces"]   # '-' -> '_'
    assert got["ansible_br_lan"]["interfaces"] == ["eth1", "eth2"] and got["ansible_br_lan"]["stp"] is False
    assert "macaddress" not in got["ansible_lo"]
    assert got["ansible_all_ipv4_addresses"] == ["192.168.1.21", "192.168.1.99"]
    dt = got["ansible_date_time"]
    assert (dt["iso8601"], dt["tz"], dt["hour"]) == ("2026-12-02T08:41:18Z", "CET", "09")
    assert dt["iso8601_micro"] == "2026-12-02T08:41:18.614766Z" and dt["iso8601_basic"] == "20261202T094118614766"
    assert got["ansible_product_name"] == "NA" and got["ansible_virtualization_type"] == "NA"
    assert got["collab_temperatures_c"] == {"cpu-thermal": 48.686} and got["ansible_uptime_seconds"] == 12345
    assert got["collab_gpus"] == []


JETSON_OUTPUT = capture(
    uname="Linux\n5.10.120-tegra\naarch64\norin-01\n#1 SMP PREEMPT", os_release=UBUNTU, nproc="12",
    cpuinfo=ORIN_CPUINFO,
    meminfo="MemTotal:       31000000 kB\nMemFree:        25000000 kB\nBuffers:           10000 kB\n"
            "Cached:          2000000 kB\nSwapCached:            0 kB\nSwapTotal:      15500000 kB\n"
            "SwapFree:       15500000 kB",
    model="NVIDIA Jetson AGX Orin Developer Kit\x00",
    tegra="# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1",
    thermal="CPU-therm 51500\nGPU-therm 49000\nCPU-therm 50000")


def test_jetson_capture():
    got = facts.parse_facts(JETSON_OUTPUT)
    assert got["collab_board_model"] == "NVIDIA Jetson AGX Orin Developer Kit"
    assert got["collab_board_family"] == "jetson" and got["collab_arch"] == "jetson"
    assert got["collab_l4t_release"] == "35.4.1" and got["collab_jetpack"] == "5.1.2"
    assert got["collab_tegra_board"] == "t186ref"
    assert got["ansible_distribution"] == "Ubuntu" and got["ansible_os_family"] == "Debian"
    assert got["ansible_distribution_version"] == "20.04" and got["ansible_distribution_release"] == "focal"
    assert got["ansible_processor"] == [str(n) for n in range(12)]       # Ansible's list on this board
    assert got["ansible_processor_count"] == 12 and got["ansible_processor_vcpus"] == 12
    assert got["collab_gpus"] == ["integrated (Tegra)"]
    assert got["collab_temperatures_c"] == {"CPU-therm": 51.5, "GPU-therm": 49.0, "CPU-therm_": 50.0}
    assert got["collab_temperature_max_c"] == 51.5
    assert "ansible_default_ipv4" not in got and "collab_docker_version" not in got


def test_nvidia_smi_gpus():
    got = facts_hardware.parse_gpus("NVIDIA GeForce RTX 3090, 24576, 535.104.05\nTesla T4, 15360, 535.104.05\n",
                                    None)
    assert got["collab_gpus"] == ["NVIDIA GeForce RTX 3090", "Tesla T4"]
    assert got["collab_gpu_devices"][0] == {"name": "NVIDIA GeForce RTX 3090", "memory_total_mb": 24576,
                                            "driver_version": "535.104.05"}


def test_old_l4t_revision_without_minor():
    got = facts_hardware.parse_board("NVIDIA Jetson Nano Developer Kit",
                                     "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref")
    assert got["collab_l4t_release"] == "32.7.1" and got["collab_jetpack"] == "4.6.1"
    assert facts_hardware.parse_board("", "# R36 (release), REVISION: 3")["collab_l4t_release"] == "36.3.0"


def test_missing_sections_leave_facts_absent_not_wrong():
    got = facts.parse_facts("@@@ uname\nLinux\n")
    assert got["ansible_system"] == "Linux"
    for key in ("ansible_memtotal_mb", "ansible_mounts", "ansible_processor", "ansible_distribution",
                "ansible_default_ipv4", "ansible_date_time", "collab_board_model", "ansible_uptime_seconds"):
        assert key not in got, key


@pytest.mark.parametrize("cpuinfo, arch", [(PI_CPUINFO, "armv7l"), (ORIN_CPUINFO, "aarch64"),
                                           (XEON_CPUINFO, "x86_64")], ids=["rpi4", "orin", "xeon-2s"])
def test_cpu_facts_are_ansibles(monkeypatch, cpuinfo, arch):
    want = ansible_cpu(monkeypatch, cpuinfo, arch)
    got = facts_hardware.parse_cpu(cpuinfo, arch, "")
    want.pop("processor_nproc"), got.pop("processor_nproc")        # Ansible asks this process's affinity
    assert got == want
    if arch == "x86_64":
        assert (got["processor_count"], got["processor_cores"], got["processor_threads_per_core"],
                got["processor_vcpus"]) == (2, 4, 2, 16)


@pytest.mark.parametrize("os_release, debian_version", [(RASPBIAN, "11.7\n"), (DEBIAN, "12.11\n"),
                                                        (UBUNTU, "bullseye/sid\n"), (DEBIAN, "trixie/sid\n")],
                         ids=["raspbian", "debian", "ubuntu", "debian-testing"])
def test_distribution_facts_are_ansibles(monkeypatch, tmp_path, os_release, debian_version):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_text(os_release)
    (tmp_path / "etc" / "debian_version").write_text(debian_version)
    want = ansible_distribution(monkeypatch, tmp_path)
    got = facts_system.parse_distribution(os_release, debian_version, {})
    assert got == want


def test_host_surroundings_parse_as_ansible_does():
    from pytest_collab.lan import facts_host
    got = facts_host.parse_host({
        "resolv": "# c\nnameserver 10.0.0.1\nnameserver 10.0.0.2\nsearch lab example\noptions ndots:2 rotate\n",
        "user": "pi 1000 1000 1000\npi:x:1000:1000:Pi,,,:/home/pi:/bin/bash",
        "cmdline": "console=ttyS0 console=tty1 root=/dev/mmcblk0p2 quiet",
        "loadavg": "0.52 0.58 0.59 1/123 4567", "fips": "0", "apparmor": "no",
        "ssh_keys": "/etc/ssh/ssh_host_ed25519_key.pub ssh-ed25519 AAAAC3Nz root@rpi\n"
                    "/etc/ssh_host_ed25519_key.pub ssh-ed25519 OTHER root@rpi"}, {})
    assert got["dns"] == {"nameservers": ["10.0.0.1", "10.0.0.2"], "search": ["lab", "example"],
                          "options": {"ndots": "2", "rotate": True}}
    assert (got["user_id"], got["user_uid"], got["user_dir"], got["user_gecos"]) == ("pi", 1000, "/home/pi", "Pi,,,")
    assert got["cmdline"]["console"] == "tty1" and got["proc_cmdline"]["console"] == ["ttyS0", "tty1"]
    assert got["cmdline"]["quiet"] is True and got["loadavg"] == {"1m": 0.52, "5m": 0.58, "15m": 0.59}
    assert got["fips"] is False and got["apparmor"] == {"status": "disabled"}
    assert got["ssh_host_key_ed25519_public"] == "AAAAC3Nz"        # /etc/ssh first, as Ansible


@pytest.mark.parametrize("virt, dmi, want", [
    ("cgroup 0::/docker/0123abcd\nexists /.dockerenv", "", ("docker", "guest", ["container", "docker"], [])),
    ("cgroup 0::/lxc/c1\ncgroup 1::/docker/ab", "", ("lxc", "guest", ["container", "docker", "lxc"], [])),
    ("module kvm\nexists /dev/kvm", "", ("kvm", "host", [], ["kvm"])),
    ("", "sysfs\nproduct_name KVM\nsys_vendor QEMU", ("kvm", "guest", ["kvm"], [])),
    ("", "sysfs\nproduct_name VMware Virtual Platform\nsys_vendor VMware, Inc.", ("VMware", "guest", ["VMware"], [])),
    ("", "", ("NA", "NA", [], [])),                                      # a Raspberry Pi
])
def test_virtualization_rules(virt, dmi, want):
    got = facts_system.parse_virtualization(virt, dmi, "", "")
    assert (got["virtualization_type"], got["virtualization_role"], got["virtualization_tech_guest"],
            got["virtualization_tech_host"]) == want


def test_block_devices_with_partitions():
    blockdevs = ("mmcblk0 link ../devices/platform/emmc2bus/fe340000.mmc/mmc_host/mmc0/mmc0:aaaa/block/mmcblk0\n"
                 "mmcblk0 removable 0\nmmcblk0 queue/rotational 0\nmmcblk0 queue/scheduler [mq-deadline] none\n"
                 "mmcblk0 queue/logical_block_size 512\nmmcblk0 size 62333952\nmmcblk0 device/serial 0x1234\n"
                 "mmcblk0 part mmcblk0p1 8192 524288\nmmcblk0 part mmcblk0p2 532480 61801472\n"
                 "mmcblk0 partholder mmcblk0p2 dm-0 cryptroot")
    links = ("by-uuid 4BBD-D3E7 ../../mmcblk0p1\nby-label bootfs ../../mmcblk0p1\n"
             "by-id mmc-SC64G_0x1234 ../../mmcblk0\nby-id wwn-0x5000 ../../mmcblk0")
    got = facts_hardware.parse_devices(blockdevs, links, "")
    disk = got["devices"]["mmcblk0"]
    assert (disk["size"], disk["sectors"], disk["scheduler_mode"], disk["serial"]) == \
        ("29.72 GB", 62333952, "mq-deadline", "0x1234")
    assert disk["wwn"] == "0x5000" and disk["links"]["ids"] == ["mmc-SC64G_0x1234", "wwn-0x5000"]
    p1, p2 = disk["partitions"]["mmcblk0p1"], disk["partitions"]["mmcblk0p2"]
    assert (p1["uuid"], p1["links"]["labels"], p1["size"], p1["start"]) == \
        ("4BBD-D3E7", ["bootfs"], "256.00 MB", "8192")
    assert p2["holders"] == ["cryptroot"] and p2["uuid"] is None
    assert got["device_links"]["uuids"] == {"mmcblk0p1": ["4BBD-D3E7"]}
