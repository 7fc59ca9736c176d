"""A profile back to an Ansible inventory (INI or YAML) that reads as it came in.

The group tree, group variables, each device's groups and own variables come from what
import kept (``LAN.groups``, ``Device.groups``, ``Device.vars``); where a profile field
was edited since (address, user, port, key, interpreter, kind, tags, ...) the host gets
the variable that says so, and only then, so ``ansible-inventory --list`` of the export
equals that of the original. Devices never imported are placed in their kind's and
tags' groups.
"""
from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from pytest_collab.lan.inventory import PRIORITY, SPECIAL, Inventory, device_fields
from pytest_collab.lan.inventory_parse import literal

if TYPE_CHECKING:
    from pytest_collab.lan.profile import LAN, Device

FORMATS = ("ini", "yaml")
HEADER = "# written by pytest-collab (collab lan export): groups, children and variables kept\n"


def from_lan(lan: "LAN") -> Inventory:
    """The inventory a profile stands for, host variables adjusted to its fields."""
    inv = Inventory(str(lan.path or lan.name))
    for name, entry in lan.groups.items():
        inv.group(name).vars.update(entry.get("vars", {}))
    for name, entry in lan.groups.items():
        for child in entry.get("children", []):
            inv.add_child(name, child, inv.source)
    devices = {d.name: d for d in lan.devices}
    for name, entry in lan.groups.items():          # members in their imported order first
        for host in entry.get("hosts", []):
            if host in devices and name in devices[host].groups:
                inv.add_host(host, name, {})
    for device in lan.devices:
        groups = list(device.groups) or [device.kind, *device.tags]
        for group in groups:
            inv.add_host(device.name, group, {})
        inv.hosts[device.name] = dict(device.vars)
    for device in lan.devices:
        inv.hosts[device.name].update(_overrides(inv, device))
    return inv


def _overrides(inv: Inventory, device: "Device") -> dict[str, Any]:
    """Host variables that make the inventory say what the device's fields say."""
    out: dict[str, Any] = {}
    variables = inv.host_vars(device.name)
    kind, tags = inv.kind_and_tags(device.name, variables)
    if kind != device.kind:
        out["collab_kind"] = device.kind
        kind, tags = inv.kind_and_tags(device.name, {**variables, **out})
    extra = [t for t in device.tags if t not in tags]
    if extra:
        out["collab_tags"] = ",".join([*(t for t in tags if t in device.tags), *extra])
    fields = device_fields(device.name, variables, kind, tags)
    if fields["address"] != device.address:
        out["ansible_host"] = device.address
    if (device.transport == "local") != (fields["transport"] == "local"):
        out["ansible_connection"] = "local" if device.transport == "local" else "ssh"
    if device.transport == "ssh" and device.ssh is not None:
        ssh = fields.get("ssh", {})
        for var, have, want in (("ansible_user", ssh.get("user"), device.ssh.user),
                                ("ansible_port", ssh.get("port", 22), device.ssh.port),
                                ("ansible_ssh_private_key_file", ssh.get("key"), device.ssh.key)):
            if have != want and want is not None:
                out[var] = want
    if fields["python"] != device.python:
        out["ansible_python_interpreter"] = device.python
    for var, attr, default in (("collab_arch", "arch", None), ("collab_workdir", "workdir", "/tmp/pytest-collab"),
                               ("collab_runtime", "runtime", "process")):
        if fields.get(attr, default) != getattr(device, attr):
            out[var] = getattr(device, attr)
    return out


def _same(text: str, value: Any) -> bool:
    back = literal(text)
    return back == value and type(back) is type(value)


def _ini_value(value: Any) -> str:
    """A ``[group:vars]`` value Ansible reads back (stripped, ast.literal_eval) with its type."""
    if isinstance(value, str) and value == value.strip() and _same(value, value):
        return value
    return repr(value)


def _host_token(key: str, value: Any) -> str:
    """``key=value`` on a host line, quoted only as much as shlex and literal_eval need."""
    for text in ([value] if isinstance(value, str) else []) + [repr(value)]:
        if not _same(text, value):
            continue
        for token in (f"{key}={text}", f'{key}="{text}"', f"{key}='{text}'"):
            try:
                if shlex.split(token, comments=True) == [f"{key}={text}"]:
                    return token
            except ValueError:
                continue
    return shlex.quote(f"{key}={value!r}")


def _host_line(name: str, variables: dict[str, Any]) -> str:
    return " ".join([name, *(_host_token(k, v) for k, v in variables.items())])


def to_ini(inv: Inventory) -> str:
    """INI: ungrouped hosts first, then each group's hosts, :vars and :children."""
    written: set[str] = set()
    lines = [HEADER.rstrip("\n")]

    def host(name: str) -> str:
        first = name not in written
        written.add(name)
        return _host_line(name, inv.hosts[name] if first else {})
    ungrouped = [h for h in inv.hosts if inv.direct_groups(h) == ["ungrouped"]]
    lines += [host(h) for h in ungrouped]
    if inv.groups["all"].vars:
        lines += ["", "[all:vars]"] + [f"{k}={_ini_value(v)}" for k, v in inv.groups["all"].vars.items()]
    for group in inv.groups.values():
        if group.name in SPECIAL:
            continue
        lines += ["", f"[{group.name}]"] + [host(h) for h in group.hosts]
        if group.vars:
            lines += ["", f"[{group.name}:vars]"] + [f"{k}={_ini_value(v)}" for k, v in group.vars.items()]
        if group.children:
            lines += ["", f"[{group.name}:children]"] + list(group.children)
    return "\n".join(lines) + "\n"


def to_yaml(inv: Inventory) -> str:
    """YAML: every group's body once, nested under its first parent; hosts' vars once."""
    import yaml
    placed: set[str] = set()
    written: set[str] = set()

    def hosts(names: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in names:
            out[name] = dict(inv.hosts[name]) if name not in written and inv.hosts[name] else None
            written.add(name)
        return out

    def body(name: str) -> dict[str, Any] | None:
        if name in placed:
            return None
        placed.add(name)
        group = inv.groups[name]
        out: dict[str, Any] = {}
        if group.hosts:
            out["hosts"] = hosts(group.hosts)
        if group.vars:
            out["vars"] = dict(group.vars)
        if group.children:
            out["children"] = {child: body(child) for child in group.children}
        return out or None

    top = [g for g in inv.groups if g not in SPECIAL and inv.parents(g) == ["all"]]
    root: dict[str, Any] = {}
    ungrouped = [h for h in inv.hosts if inv.direct_groups(h) == ["ungrouped"]]
    if ungrouped:
        root["hosts"] = hosts(ungrouped)
    if inv.groups["all"].vars:
        root["vars"] = dict(inv.groups["all"].vars)
    if top:
        root["children"] = {g: body(g) for g in top}
    return HEADER + yaml.safe_dump({"all": root}, sort_keys=False, default_flow_style=False, allow_unicode=True)


def export(lan: "LAN", fmt: str = "ini") -> str:
    inv = from_lan(lan)
    return to_yaml(inv) if fmt == "yaml" else to_ini(inv)


__all__ = ["FORMATS", "PRIORITY", "export", "from_lan", "to_ini", "to_yaml"]
