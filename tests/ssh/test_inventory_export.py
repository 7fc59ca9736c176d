"""Inventory import (tricky INI and YAML) and fact exports in every format."""
from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest

from pytest_collab.lan import facts_export, inventory
from pytest_collab.errors import CollabError
from pytest_collab.lan.profile import Device

TRICKY_INI = """\
# lab hosts ; with comments everywhere
gateway ansible_connection=local   # the controller itself

[rpi]
rpi-[01:03] ansible_user=pi
rpi-04 ansible_host=10.0.0.24 ansible_port=2222 note="hello world" ; trailing comment

[jetson]
orin ansible_host=10.0.0.30 ansible_ssh_pass=hunter2 ansible_python_interpreter=/usr/bin/python3.8

[edge:children]
rpi
jetson

[edge:vars]
ansible_user=lab
collab_tags=camera

[all:vars]
ansible_ssh_private_key_file=~/.ssh/lab_ed25519

[weird:section]
x
"""

TRICKY_YAML = """\
all:
  vars:
    ansible_user: admin
  hosts:
    desk:
      ansible_host: 10.0.0.5
      collab_kind: server
  children:
    gpu:
      hosts:
        desk:
        orin:
          ansible_host: 10.0.0.30
          ansible_port: 2200
      vars:
        ansible_user: nvidia
    boards:
      children:
        jetson:
          hosts:
            orin:
        rpi:
          hosts:
            rpi-[a:b]:
              ansible_user: pi
          vars: {foo: 1}
    empty:
  extra_key: 1
"""


def test_tricky_ini(tmp_path):
    path = tmp_path / "hosts.ini"
    path.write_text(TRICKY_INI)
    inv = inventory.load(path)
    devices = {d.name: d for d in inventory.to_devices(inv)}
    assert list(devices) == ["gateway", "rpi-01", "rpi-02", "rpi-03", "rpi-04", "orin"]
    gw = devices["gateway"]
    assert gw.transport == "local" and gw.ssh is None and gw.kind == "device"
    r1 = devices["rpi-01"]
    assert (r1.kind, r1.tags, r1.address) == ("rpi", ("edge", "camera"), "rpi-01")
    assert r1.ssh.user == "pi"                    # host var beats group var
    assert r1.ssh.key == "~/.ssh/lab_ed25519"     # all:vars reach everyone
    r4 = devices["rpi-04"]
    assert (r4.address, r4.ssh.port, r4.ssh.user) == ("10.0.0.24", 2222, "lab")
    orin = devices["orin"]
    assert orin.kind == "jetson" and orin.python == "/usr/bin/python3.8"
    problems = "\n".join(inv.problems)
    assert "ansible_ssh_pass" in problems and "secret" in problems
    assert "hunter2" not in problems and "hunter2" not in repr(orin)
    assert "'note' not imported" in problems
    assert "[weird:section]" in problems and "hosts.ini:22" in problems
    # Ansible allows only '#' inline comments: the ';' words are reported, not swallowed.
    assert "hosts.ini:6: ';' is not key=value" in problems


def test_tricky_yaml(tmp_path):
    path = tmp_path / "inventory.yml"
    path.write_text(TRICKY_YAML)
    inv = inventory.load(path)
    devices = {d.name: d for d in inventory.to_devices(inv)}
    assert sorted(devices) == ["desk", "orin", "rpi-a", "rpi-b"]
    assert devices["desk"].kind == "server" and devices["desk"].tags == ("gpu",)
    assert devices["desk"].ssh.user == "nvidia"
    orin = devices["orin"]
    assert (orin.kind, orin.address, orin.ssh.port) == ("gpu", "10.0.0.30", 2200)
    assert set(orin.tags) == {"jetson", "boards"}
    assert devices["rpi-a"].ssh.user == "pi" and devices["rpi-a"].tags == ("boards",)
    problems = "\n".join(inv.problems)
    assert "extra_key" in problems and "'foo' not imported" in problems
    assert "empty" in inv.groups


def test_ini_round_trip(tmp_path):
    devices = inventory.to_devices(inventory.parse_ini(TRICKY_INI))
    text = inventory.to_ini(devices)
    again = {d.name: d for d in inventory.to_devices(inventory.parse_ini(text))}
    for d in devices:
        other = again[d.name]
        assert (other.kind, other.address, other.transport) == (d.kind, d.address, d.transport)
        assert set(other.tags) == set(d.tags)
        assert (other.ssh and other.ssh.port, other.ssh and other.ssh.user) == \
            (d.ssh and d.ssh.port, d.ssh and d.ssh.user)


def _devices():
    a = Device(name="rpi-01", kind="rpi", address="10.0.0.21", tags=("edge",),
               facts={"ansible_memtotal_mb": 3793, "collab_os_pretty": "Debian 11",
                      "ansible_default_ipv4": {"address": "10.0.0.21"},
                      "collab_gpus": [], "ansible_processor_vcpus": 4})
    b = Device(name="orin", kind="jetson", address="10.0.0.30",
               facts={"ansible_memtotal_mb": 30273, "collab_os_pretty": "Ubuntu 'focal'|x",
                      "collab_gpus": ["integrated (Tegra)"], "ansible_processor_vcpus": 12})
    return [a, b]


def test_exports_every_format():
    devices = _devices()
    cols = ["name", "os", "ip", "mem", "cpus", "ansible_default_ipv4.address"]
    rows = list(csv.DictReader(io.StringIO(facts_export.export(devices, "csv", columns=cols))))
    assert rows[0] == {"name": "rpi-01", "os": "Debian 11", "ip": "10.0.0.21", "mem": "3793",
                       "cpus": "4", "ansible_default_ipv4.address": "10.0.0.21"}
    assert rows[1]["ip"] == "10.0.0.30" and rows[1]["ansible_default_ipv4.address"] == ""
    data = json.loads(facts_export.export(devices, "json", columns=cols, exclude=["ip"]))
    assert data[1] == {"name": "orin", "os": "Ubuntu 'focal'|x", "mem": 30273, "cpus": 12,
                       "ansible_default_ipv4.address": None}
    md = facts_export.export(devices, "markdown", columns=["name", "os"]).splitlines()
    assert md[0] == "| name | os |" and md[3] == "| orin | Ubuntu 'focal'\\|x |"
    db = sqlite3.connect(":memory:")
    db.executescript(facts_export.export(devices, "sql", columns=["name", "mem", "gpu"]))
    assert db.execute('select name, mem, gpu from devices order by mem').fetchall() == [
        ("rpi-01", 3793.0, ""), ("orin", 30273.0, "integrated (Tegra)")]
    page = facts_export.export(devices, "html", exclude=["facts_time"])
    assert "<th>name</th>" in page and "<th>facts_time</th>" not in page
    assert "Ubuntu &#x27;focal&#x27;|x" in page and "addEventListener('click'" in page


def test_unknown_column_suggests():
    with pytest.raises(CollabError, match="did you mean mem"):
        facts_export.export(_devices(), "csv", columns=["name", "memm"])
    with pytest.raises(CollabError, match="format"):
        facts_export.export(_devices(), "xml")
