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
# lab hosts; Ansible allows ';' comments at the start of a line only
; like this one
gateway ansible_connection=local   # the controller itself

[rpi]
rpi-[01:03] ansible_user=pi
rpi-04 ansible_host=10.0.0.24 ansible_port=2222 note="hello world"  # trailing comment

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
    assert r4.vars["note"] == "hello world" and r4.groups == ("rpi",)
    orin = devices["orin"]
    assert orin.kind == "jetson" and orin.python == "/usr/bin/python3.8"
    problems = "\n".join(inv.problems)
    assert "ansible_ssh_pass" in problems and "secret" in problems
    assert "hunter2" not in problems and "hunter2" not in repr(orin)
    assert "ansible_ssh_pass" not in orin.vars


def test_profile_keeps_groups_and_vars(tmp_path):
    """Imported groups and variables survive a save and load of the profile."""
    from pytest_collab.lan.profile import LAN, Controller, load_profile, save_profile
    inv = inventory.parse_ini(TRICKY_INI, "hosts.ini")
    lan = LAN(name="lab", path=None, controller=Controller(), devices=inventory.to_devices(inv))
    inventory.merge_groups(lan, inv)
    path = tmp_path / "lab.yaml"
    save_profile(lan, path)
    again = load_profile(str(path), tmp_path)
    assert again.groups == lan.groups and again.groups["edge"] == {
        "children": ["rpi", "jetson"], "vars": {"ansible_user": "lab", "collab_tags": "camera"}}
    assert again.groups["rpi"]["hosts"] == ["rpi-01", "rpi-02", "rpi-03", "rpi-04"]
    assert [(d.groups, d.vars) for d in again.devices] == [(d.groups, d.vars) for d in lan.devices]
    assert "hunter2" not in path.read_text()


def _devices():
    a = Device(name="rpi-01", kind="rpi", address="10.0.0.21", tags=("edge",),
               facts={"ansible_memtotal_mb": 3793, "collab_os_pretty": "Debian 11",
                      "ansible_default_ipv4": {"address": "10.0.0.21"},
                      "collab_gpus": [], "ansible_processor_vcpus": 4,
                      "ansible_processor": ["0", "1", "2", "3"]})
    b = Device(name="orin", kind="jetson", address="10.0.0.30",
               facts={"ansible_memtotal_mb": 30273, "collab_os_pretty": "Ubuntu 'focal'|x",
                      "ansible_processor": ["0", "ARM", "Cortex-A78AE", "1", "ARM", "Cortex-A78AE"],
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


def test_cpu_column_reads_the_model_out_of_ansibles_list():
    rows = json.loads(facts_export.export(_devices(), "json", columns=["name", "cpu"]))
    assert rows == [{"name": "rpi-01", "cpu": None}, {"name": "orin", "cpu": "Cortex-A78AE"}]


def test_unknown_column_suggests():
    with pytest.raises(CollabError, match="did you mean mem"):
        facts_export.export(_devices(), "csv", columns=["name", "memm"])
    with pytest.raises(CollabError, match="format"):
        facts_export.export(_devices(), "xml")


def test_secret_looking_variables_never_reach_the_profile(tmp_path):
    from pytest_collab.lan.profile import LAN, Controller, load_profile, save_profile
    inv = inventory.parse_ini("[g]\nh1 password=x db=\"{'password':'y'}\" ok=1\n[g:vars]\nansible_become_pass=z\n"
                              "cert='-----BEGIN OPENSSH PRIVATE KEY-----'\n", "hosts.ini")
    lan = LAN(name="lab", path=None, controller=Controller(), devices=inventory.to_devices(inv))
    inventory.merge_groups(lan, inv)
    assert lan.devices[0].vars == {"ok": 1} and "vars" not in lan.groups["g"]
    notes = "\n".join(inv.problems)
    assert all(f"'{name}'" in notes for name in ("password", "db", "ansible_become_pass", "cert"))
    save_profile(lan, tmp_path / "lab.yaml")
    assert load_profile(str(tmp_path / "lab.yaml"), tmp_path).devices[0].vars == {"ok": 1}


def test_format_told_by_suffix_else_by_content(tmp_path):
    hosts = tmp_path / "hosts"                      # Ansible's usual name, no suffix
    hosts.write_text("[g]\nh1 a=1\n")
    assert inventory.load(hosts).hosts == {"h1": {"a": 1}}
    hosts.write_text("all:\n  hosts:\n    h1: {a: 1}\n")
    assert inventory.load(hosts).hosts == {"h1": {"a": 1}}
    hosts.write_text("h1\nh2:2222\n")
    assert inventory.load(hosts).hosts == {"h1": {}, "h2": {"ansible_port": 2222}}


def test_group_names_ansible_warns_about_and_names_a_profile_can_not_hold(tmp_path):
    inv = inventory.parse_ini("[edge-boards]\nh1\n", "hosts.ini")
    assert any("'edge-boards'" in p and "invalid" in p for p in inv.problems)
    assert inventory.to_devices(inv)[0].kind == "edge-boards"
    with pytest.raises(CollabError, match="group 'caméra' of host 'h1'"):
        inventory.to_devices(inventory.parse_ini("[caméra]\nh1\n", "hosts.ini"))
    inv = inventory.parse_ini("[web]\nweb\n", "hosts.ini")
    assert any("both group and host with same name: web" in p for p in inv.problems)
