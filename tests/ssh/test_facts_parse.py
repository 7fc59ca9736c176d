"""Pure fact parsing on captured outputs: a Raspberry Pi 4 and a Jetson AGX Orin."""
from __future__ import annotations

from pytest_collab.lan import facts

RPI_OUTPUT = """\
@@@ uname
Linux
6.1.21-v8+
aarch64
rpi-01
@@@ hostname_f
rpi-01.lab
@@@ os_release
PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"
NAME="Debian GNU/Linux"
VERSION_ID="11"
VERSION="11 (bullseye)"
VERSION_CODENAME=bullseye
ID=debian
@@@ nproc
4
@@@ cpuinfo
processor	: 0
processor	: 1
processor	: 2
processor	: 3
Hardware	: BCM2835
Model		: Raspberry Pi 4 Model B Rev 1.4
@@@ meminfo
MemTotal:        3884360 kB
MemFree:         2998000 kB
MemAvailable:    3400000 kB
SwapTotal:        102396 kB
SwapFree:         102396 kB
@@@ df
/dev/root         30358348 5222108  23825564      19% /
@@@ model
Raspberry Pi 4 Model B Rev 1.4
@@@ tegra
@@@ gpu
@@@ docker
Docker version 24.0.5, build ced0996
@@@ python
Python 3.9.2
@@@ addr
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: eth0    inet 192.168.1.21/24 brd 192.168.1.255 scope global dynamic eth0\\       valid_lft 80000sec
2: eth0    inet6 fe80::dea6:32ff:fe01:203/64 scope link \\       valid_lft forever preferred_lft forever
@@@ route
default via 192.168.1.1 dev eth0 proto dhcp src 192.168.1.21 metric 202
@@@ mac
eth0 dc:a6:32:01:02:03
lo 00:00:00:00:00:00
wlan0 dc:a6:32:01:02:04
@@@ thermal
cpu-thermal 48686
@@@ uptime
12345.67 40000.00
"""

JETSON_OUTPUT = """\
@@@ uname
Linux
5.10.120-tegra
aarch64
orin-01
@@@ os_release
NAME="Ubuntu"
VERSION_ID="20.04"
PRETTY_NAME="Ubuntu 20.04.6 LTS"
VERSION_CODENAME=focal
ID=ubuntu
ID_LIKE=debian
@@@ nproc
12
@@@ cpuinfo
processor	: 0
model name	: ARMv8 Processor rev 1 (v8l)
@@@ meminfo
MemTotal:       31000000 kB
@@@ model
NVIDIA Jetson AGX Orin Developer Kit\x00
@@@ tegra
# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023
@@@ thermal
CPU-therm 51500
GPU-therm 49000
CPU-therm 50000
"""


def test_raspberry_pi_capture():
    got = facts.parse_facts(RPI_OUTPUT)
    assert got["ansible_architecture"] == "aarch64" and got["collab_arch"] == "arm64"
    assert got["ansible_hostname"] == "rpi-01" and got["ansible_fqdn"] == "rpi-01.lab"
    assert got["ansible_distribution"] == "Debian"
    assert got["ansible_distribution_version"] == "11"
    assert got["ansible_distribution_release"] == "bullseye"
    assert got["ansible_os_family"] == "Debian"
    assert got["ansible_processor"] == ["BCM2835"]      # the SoC; the board is below
    assert got["ansible_processor_vcpus"] == 4
    assert got["ansible_memtotal_mb"] == 3793 and got["ansible_swaptotal_mb"] == 99
    assert got["collab_board_model"] == "Raspberry Pi 4 Model B Rev 1.4"
    assert got["collab_board_family"] == "rpi"
    assert got["collab_docker_version"] == "24.0.5"
    assert got["ansible_python_version"] == "3.9.2"
    assert got["ansible_all_ipv4_addresses"] == ["192.168.1.21"]
    assert got["ansible_default_ipv4"] == {"interface": "eth0", "address": "192.168.1.21",
                                           "macaddress": "dc:a6:32:01:02:03"}
    assert got["collab_macs"] == {"eth0": "dc:a6:32:01:02:03", "wlan0": "dc:a6:32:01:02:04"}
    assert got["collab_temperatures_c"] == {"cpu-thermal": 48.686}
    assert got["ansible_mounts"][0]["size_total"] == 30358348 * 1024
    assert got["ansible_uptime_seconds"] == 12345
    assert got["collab_gpus"] == []


def test_jetson_capture():
    got = facts.parse_facts(JETSON_OUTPUT)
    assert got["collab_board_model"] == "NVIDIA Jetson AGX Orin Developer Kit"
    assert got["collab_board_family"] == "jetson" and got["collab_arch"] == "jetson"
    assert got["collab_l4t_release"] == "35.4.1" and got["collab_jetpack"] == "5.1.2"
    assert got["collab_tegra_board"] == "t186ref"
    assert got["ansible_distribution"] == "Ubuntu" and got["ansible_os_family"] == "Debian"
    assert got["ansible_processor"] == ["ARMv8 Processor rev 1 (v8l)"]
    assert got["ansible_processor_vcpus"] == 12
    assert got["collab_gpus"] == ["integrated (Tegra)"]
    assert got["collab_temperatures_c"] == {"CPU-therm": 51.5, "GPU-therm": 49.0, "CPU-therm_": 50.0}
    assert got["collab_temperature_max_c"] == 51.5
    assert got["ansible_default_ipv4"] == {} and got["collab_docker_version"] is None


def test_old_l4t_revision_without_minor():
    got = facts.parse_board("NVIDIA Jetson Nano Developer Kit",
                            "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref")
    assert got["collab_l4t_release"] == "32.7.1" and got["collab_jetpack"] == "4.6.1"
    assert facts.parse_board("", "# R36 (release), REVISION: 3")["collab_l4t_release"] == "36.3.0"


def test_missing_sections_give_empty_values_not_errors():
    got = facts.parse_facts("@@@ uname\nLinux\n")
    assert got["ansible_system"] == "Linux" and got["ansible_memtotal_mb"] is None
    assert got["ansible_mounts"] == [] and got["collab_board_model"] is None
