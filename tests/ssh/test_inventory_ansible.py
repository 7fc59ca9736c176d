"""Inventory import and export against the real ``ansible-inventory --list``.

Every tricky inventory is read by Ansible and by collab; the resolved variables of every
host, the group members and children must agree, and an export of the imported profile
(INI and YAML) must list exactly as the original does."""
from __future__ import annotations

from pathlib import Path

import pytest

from pytest_collab.errors import ProfileError
from pytest_collab.lan import inventory, inventory_write
from pytest_collab.lan.profile import LAN, Controller

from .ansible_tools import AnsibleTools, ansible_tools_fixture  # noqa: F401  (the fixture)

INVENTORIES = {
    # a host in two sibling groups: same depth and priority, so the name decides (b wins)
    "siblings.ini": """\
[a]
h1 user_var=from_a_host_never
h2
[b]
h1
[a:vars]
ansible_user=from_a
who=a
[b:vars]
ansible_user=from_b
who=b
""",
    # depth beats order: leaf (all > top > mid > leaf) wins over top-level zz, wherever they appear
    "nested.ini": """\
[leaf]
h1
[zz]
h1 ansible_host=10.0.0.9
[mid:children]
leaf
[top:children]
mid
[zz:vars]
ansible_user=from_zz
ansible_port=2001
[leaf:vars]
ansible_user=from_leaf
ansible_port=2002
[top:vars]
ansible_user=from_top
colour=blue
""",
    # ansible_group_priority reorders groups of the same depth
    "priority.ini": """\
[alpha]
h1
[beta]
h1
[alpha:vars]
ansible_group_priority=10
who=alpha
[beta:vars]
who=beta
""",
    # ranges, host:port, typed values, all:vars, a host on two lines
    "ranges.ini": """\
gateway ansible_connection=local   # the controller itself
web.example.com:2222
[rpi]
rpi-[01:03] ansible_user=pi
rpi-[a:c]:2200 n=010 f=1.5 t=True s='quoted # not a comment' l="[1, 2]"
node[1:7:3]
[rpi:vars]
camera=yes
depth = 3
[all:vars]
ansible_ssh_private_key_file=~/.ssh/lab_ed25519
[edge:children]
rpi
jetson
[jetson]
orin ansible_host=10.0.0.30 ansible_python_interpreter=/usr/bin/python3.8
rpi-01 extra=1
""",
    "lab.yml": """\
all:
  vars:
    ansible_user: admin
    nested: {a: 1, b: [1, 2]}
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
            xavier[1:2]:
        rpi:
          hosts:
            rpi-[a:b]:
              ansible_user: pi
            "web:2222":
          vars: {foo: 1, flag: yes}
    empty:
""",
}


def _ours(path: Path) -> dict:
    """What collab resolves, in the shape of ``ansible-inventory --list``."""
    inv = inventory.load(path)
    out: dict = {"_meta": {"hostvars": {h: inv.host_vars(h) for h in inv.hosts}}}
    for name, group in inv.groups.items():
        entry = {}
        hosts = [h for h in inv.hosts if name in inv.direct_groups(h)]
        if hosts:
            entry["hosts"] = hosts
        children = list(group.children) if name != "all" else \
            [g for g in inv.groups if g != "all" and inv.parents(g) == ["all"]]
        if children:
            entry["children"] = children
        out[name] = entry
    return out


def _normal(listing: dict) -> dict:
    """Order-insensitive for member lists (Ansible lists them in its own creation order)."""
    out = {"_meta": {"hostvars": {h: v for h, v in listing["_meta"]["hostvars"].items() if v}}}
    for name, entry in listing.items():
        if name != "_meta" and (entry.get("hosts") or entry.get("children")):
            out[name] = {k: sorted(v) for k, v in entry.items()}
    return out


@pytest.fixture(params=sorted(INVENTORIES))
def source(request, tmp_path) -> Path:
    path = tmp_path / request.param
    path.write_text(INVENTORIES[request.param])
    return path


def test_import_resolves_as_ansible_does(source, ansible_tools: AnsibleTools):
    theirs = ansible_tools.inventory_list(source)
    assert _normal(_ours(source)) == _normal(theirs)
    hostvars = theirs["_meta"]["hostvars"]
    if source.name == "siblings.ini":
        assert hostvars["h1"]["ansible_user"] == "from_b" and hostvars["h2"]["ansible_user"] == "from_a"
    if source.name == "nested.ini":
        assert (hostvars["h1"]["ansible_user"], hostvars["h1"]["ansible_port"]) == ("from_leaf", 2002)
    if source.name == "priority.ini":
        assert hostvars["h1"]["who"] == "alpha"


def test_devices_follow_the_resolved_variables(tmp_path):
    nested = tmp_path / "nested.ini"
    nested.write_text(INVENTORIES["nested.ini"])
    (h1,) = inventory.to_devices(inventory.load(nested))
    assert (h1.address, h1.ssh.user, h1.ssh.port) == ("10.0.0.9", "from_leaf", 2002)
    assert h1.kind == "leaf" and h1.tags == ("mid", "zz", "top")     # precedence order, strongest first
    ranges = tmp_path / "ranges.ini"
    ranges.write_text(INVENTORIES["ranges.ini"])
    devices = {d.name: d for d in inventory.to_devices(inventory.load(ranges))}
    assert devices["web.example.com"].address == "web.example.com" and devices["web.example.com"].ssh.port == 2222
    assert devices["rpi-a"].ssh.port == 2200 and devices["gateway"].transport == "local"
    assert devices["rpi-a"].vars == {"ansible_port": 2200, "n": "010", "f": 1.5, "t": True,
                                     "s": "quoted # not a comment", "l": [1, 2]}
    assert sorted(d for d in devices if d.startswith("node")) == ["node1", "node4", "node7"]
    assert devices["orin"].python == "/usr/bin/python3.8" and devices["orin"].kind == "jetson"


def test_kind_rule_is_order_independent(tmp_path):
    """The same groups written in two orders, INI and YAML: the same kind and tags."""
    one = tmp_path / "one.ini"
    one.write_text("[gpu]\norin\n[jetson]\norin\n[boards:children]\njetson\n")
    two = tmp_path / "two.ini"
    two.write_text("[boards:children]\njetson\n[jetson]\norin\n[gpu]\norin\n")
    three = tmp_path / "three.yml"
    three.write_text("all:\n  children:\n    boards:\n      children:\n        jetson:\n          hosts:\n"
                     "            orin:\n    gpu:\n      hosts:\n        orin:\n")
    kinds = {(d.kind, d.tags) for p in (one, two, three) for d in inventory.to_devices(inventory.load(p))}
    assert kinds == {("jetson", ("gpu", "boards"))}


@pytest.mark.parametrize("fmt", ["ini", "yaml"])
def test_export_round_trip_lists_identically(source, ansible_tools: AnsibleTools, tmp_path, fmt):
    lan = LAN(name="lab", path=None, controller=Controller(), devices=[])
    inv = inventory.load(source)
    lan.devices = inventory.to_devices(inv)
    inventory.merge_groups(lan, inv)
    exported = tmp_path / f"exported.{'yml' if fmt == 'yaml' else 'ini'}"
    exported.write_text(inventory_write.export(lan, fmt))
    original, again = ansible_tools.inventory_list(source), ansible_tools.inventory_list(exported)
    assert again == original, exported.read_text()          # identical, member order included


def test_export_says_what_was_edited(ansible_tools: AnsibleTools, tmp_path):
    source = tmp_path / "nested.ini"
    source.write_text(INVENTORIES["nested.ini"])
    lan = LAN(name="lab", path=None, controller=Controller(), devices=[])
    inv = inventory.load(source)
    lan.devices = inventory.to_devices(inv)
    inventory.merge_groups(lan, inv)
    h1 = lan.devices[0]
    h1.address, h1.ssh.user, h1.kind, h1.tags = "10.0.0.99", "edited", "server", (*h1.tags, "camera")
    exported = tmp_path / "edited.ini"
    exported.write_text(inventory_write.export(lan, "ini"))
    hostvars = ansible_tools.inventory_list(exported)["_meta"]["hostvars"]["h1"]
    assert (hostvars["ansible_host"], hostvars["ansible_user"], hostvars["collab_kind"]) == \
        ("10.0.0.99", "edited", "server")
    (again,) = inventory.to_devices(inventory.load(exported))
    # the kind is no longer a group of its own: 'leaf' joins the tags (tags are all other groups)
    assert (again.address, again.ssh.user, again.kind, set(again.tags)) == \
        ("10.0.0.99", "edited", "server", {*h1.tags, "leaf"})


REJECTED = {
    "inline ; comment": ("[rpi]\nrpi-01 ansible_host=10.0.0.21 ; my pi\n", 2, "Expected key=value"),
    "spaces around =": ("[rpi]\nrpi-01 ansible_host = 10.0.0.21\n", 2, "Expected key=value"),
    "range widths": ("h[01:100]\n", 1, "equal-length"),
    "range backwards": ("[g]\nh[c:a]\n", 2, "begin <= end"),
    "range without end": ("h[1:]\n", 1, "end value"),
    "range step zero": ("h[1:3:0]\n", 1, "zero"),
    "unknown section": ("[g]\nh1\n[weird:section]\nx\n", 3, "unknown type"),
    "undefined child": ("[g:children]\nmissing\n", 2, "undefined group 'missing'"),
    "vars of no group": ("[ghost:vars]\na=1\n", 1, "undefined group 'ghost'"),
    "section with spaces": ("[my group]\nh1\n", 1, "Invalid section entry"),
    "port without number": ("h1:\n", 1, "ending in ':'"),
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_what_ansible_rejects_is_rejected_with_file_and_line(name, tmp_path, ansible_tools: AnsibleTools):
    text, line, words = REJECTED[name]
    path = tmp_path / "hosts.ini"
    path.write_text(text)
    proc = ansible_tools.run("ansible-inventory", "-i", str(path), "--list", check=False)
    assert "Unable to parse" in proc.stderr or proc.returncode != 0, proc.stderr   # Ansible refuses it
    with pytest.raises(ProfileError) as info:
        inventory.load(path)
    assert f"{path}:{line}:" in str(info.value) and words in str(info.value)


def test_empty_range_is_reported_not_silent(tmp_path, ansible_tools: AnsibleTools):
    path = tmp_path / "hosts.ini"
    path.write_text("h[3:1]\nh9\n")
    assert list(ansible_tools.inventory_list(path)["_meta"]["hostvars"]) == []   # Ansible: nothing at all
    inv = inventory.load(path)
    assert list(inv.hosts) == ["h9"] and "expands to no host" in inv.problems[0]


def test_yaml_warnings_and_refusals(tmp_path):
    path = tmp_path / "inv.yml"
    path.write_text("all:\n  children:\n    g:\n      hosts: {h1: }\n      extra_key: {a: 1}\n      note: text\n")
    inv = inventory.load(path)
    assert "h1" in inv.hosts and any("extra_key" in p for p in inv.problems)
    assert any("note" in p and "not a mapping" in p for p in inv.problems)
    path.write_text("all:\n  hosts:\n    42:\n")
    with pytest.raises(ProfileError, match="must be a string"):
        inventory.load(path)
    path.write_text("plugin: aws_ec2\n")
    with pytest.raises(ProfileError, match="Plugin configuration"):
        inventory.load(path)


def test_cli_import_save_load_export_round_trip(source, ansible_tools: AnsibleTools, tmp_path, monkeypatch):
    """Through the commands and the profile file: import, save, load, export (INI and YAML)."""
    from pytest_collab.cli import main
    monkeypatch.chdir(tmp_path)
    (tmp_path / "network_profiles").mkdir()
    (tmp_path / "network_profiles" / "lab.yaml").write_text(
        "name: lab\ndevices:\n  - {name: ctl, kind: controller}\n")
    assert main(["lan", "import", "lab", str(source)]) == 0
    original = ansible_tools.inventory_list(source)
    for out in ("back.ini", "back.yml"):
        assert main(["lan", "export", "lab", "-o", out]) == 0
        again = ansible_tools.inventory_list(tmp_path / out)
        again["_meta"]["hostvars"].pop("ctl", None)
        again.pop("controller")                           # the profile's own device, not imported
        again["all"]["children"].remove("controller")
        assert again == original, (tmp_path / out).read_text()
