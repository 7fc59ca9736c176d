"""Ansible inventories <-> profile devices, with Ansible's variable precedence.

Labs already keep a ``hosts.ini``; importing it keeps one source of truth. A host's
variables resolve as ``ansible-inventory`` resolves them: its groups (direct ones and
their ancestors) sorted by depth (distance from ``all``), then ``ansible_group_priority``,
then name, each overriding the one before; the host's own variables last.

Kind rule (documented in docs/ansible.md, independent of the order groups appear in the
file): ``collab_kind`` if the host has it, else the host's group that comes last in that
precedence order (the deepest, most specific group, whose variables win); tags are the
host's other groups in the same order, then ``collab_tags``.

The profile keeps what a round trip needs: the group tree, group variables and member
order (``LAN.groups``), each device's direct groups and own variables (``Device.groups``,
``Device.vars``, which decide membership); connection variables become profile fields. Parsing lives in
``inventory_parse``, writing in ``inventory_write``. Nothing is dropped silently:
what is not imported (secrets) lands in ``Inventory.problems``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_collab.errors import ProfileError

if TYPE_CHECKING:
    from pytest_collab.lan.profile import LAN, Device

PRIORITY = "ansible_group_priority"
SPECIAL = ("all", "ungrouped")
SECRET_VARS = frozenset({"ansible_password", "ansible_ssh_pass", "ansible_become_pass",
                         "ansible_become_password", "ansible_ssh_private_key_passphrase"})
CONNECTIONS = (None, "local", "ssh", "paramiko", "smart")


def is_secret(name: str, value: Any) -> bool:
    """Ansible's password variables, and anything the profile schema refuses as a secret."""
    from pytest_collab.lan.schema import SECRET_KEYS
    if name in SECRET_VARS or name.lower() in SECRET_KEYS:
        return True
    if isinstance(value, str):
        return "-----BEGIN" in value
    if isinstance(value, dict):
        return any(is_secret(str(k), v) for k, v in value.items())
    if isinstance(value, list):
        return any(is_secret("", v) for v in value)
    return False


@dataclass
class Group:
    name: str
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)     # with ansible_group_priority if given

    @property
    def priority(self) -> int:
        return int(self.vars.get(PRIORITY, 1))


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    """Ansible's set_variable: a mapping set twice merges (top level), anything else replaces."""
    if isinstance(target.get(key), dict) and isinstance(value, dict):
        target[key] = {**target[key], **value}
    else:
        target[key] = value


class Inventory:
    """Hosts (own variables, first-seen order) and groups (creation order) of one source."""

    def __init__(self, source: str = "<inventory>") -> None:
        self.source = source
        self.hosts: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, Group] = {"all": Group("all"), "ungrouped": Group("ungrouped")}
        self.problems: list[str] = []

    def group(self, name: str) -> Group:
        if name not in self.groups and not re.match(r"^[^\d\W]\w*$", name):   # Ansible's rule
            self.problems.append(f"{self.source}: group name {name!r} has characters Ansible calls invalid "
                                 "in group names (it warns and keeps the name; so does collab)")
        return self.groups.setdefault(name, Group(name))

    def add_host(self, name: str, group: str, variables: dict[str, Any], port: int | None = None) -> None:
        if name not in self.hosts and port:      # host:port counts where the host first appears
            self.hosts[name] = {"ansible_port": port}
        own = self.hosts.setdefault(name, {})
        for key, value in variables.items():
            _set(own, key, value)
        members = self.group(group).hosts
        if name not in members:
            members.append(name)

    def set_group_var(self, group: str, key: str, value: Any) -> None:
        _set(self.group(group).vars, key, value)

    def add_child(self, parent: str, child: str, where: str) -> None:
        if child == parent or parent in self.descendants(child):
            raise ProfileError(where, "", f"adding group {child!r} as child to {parent!r} creates a "
                                          "recursive dependency loop")
        self.group(child)
        if child not in self.group(parent).children:
            self.group(parent).children.append(child)

    def parents(self, group: str) -> list[str]:
        found = [g.name for g in self.groups.values() if group in g.children]
        return found or ([] if group == "all" else ["all"])

    def ancestors(self, group: str) -> list[str]:
        out: list[str] = []
        todo = list(self.parents(group))
        while todo:
            name = todo.pop(0)
            if name not in out:
                out.append(name)
                todo += self.parents(name)
        return out

    def descendants(self, group: str) -> set[str]:
        out: set[str] = set()
        todo = list(self.group(group).children) if group in self.groups else []
        while todo:
            name = todo.pop()
            if name not in out:
                out.add(name)
                todo += self.groups[name].children if name in self.groups else []
        return out

    def depth(self, group: str) -> int:
        """Longest path from ``all`` (Ansible keeps the maximum over all parents)."""
        if group == "all":
            return 0
        return 1 + max(self.depth(p) for p in self.parents(group))

    def direct_groups(self, host: str) -> list[str]:
        """Groups naming the host; a host in no group but ``all`` is in ``ungrouped``."""
        direct = [g.name for g in self.groups.values() if host in g.hosts]
        real = [g for g in direct if g not in SPECIAL]
        return real if real else ["ungrouped"]

    def groups_of(self, host: str) -> list[str]:
        """Every group of the host, ancestors included, in Ansible's precedence order."""
        names: set[str] = set()
        for group in self.direct_groups(host):
            names.add(group)
            names.update(self.ancestors(group))
        names.add("all")
        return sorted(names, key=lambda g: (self.depth(g), self.groups[g].priority, g))

    def host_vars(self, host: str) -> dict[str, Any]:
        """Resolved variables: groups in precedence order, then the host's own."""
        merged: dict[str, Any] = {}
        for group in self.groups_of(host):
            merged.update({k: v for k, v in self.groups[group].vars.items() if k != PRIORITY})
        merged.update(self.hosts[host])
        return merged

    def kind_and_tags(self, host: str, variables: dict[str, Any]) -> tuple[str, list[str]]:
        """The documented kind rule (module docstring), order-independent."""
        groups = [g for g in self.groups_of(host) if g not in SPECIAL]
        kind = str(variables.get("collab_kind") or (groups[-1] if groups else "device"))
        tags = [g for g in reversed(groups) if g != kind]
        extra = variables.get("collab_tags") or []
        tags += [str(t) for t in (extra.split(",") if isinstance(extra, str) else extra) if str(t) not in tags]
        return kind, tags


def parse_ini(text: str, source: str = "<ini>") -> Inventory:
    from pytest_collab.lan.inventory_parse import parse_ini as parse
    return parse(text, source)


def load(path: Path) -> Inventory:
    """Read an INI or YAML inventory (by suffix, else by content), as Ansible would."""
    from pytest_collab.lan.inventory_parse import parse_ini, parse_yaml
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(path, "", f"can not read the inventory: {exc}") from None
    if path.suffix in (".yaml", ".yml", ".json"):
        return parse_yaml(text, str(path))
    if path.suffix in (".ini", ".cfg"):
        return parse_ini(text, str(path))
    return parse_yaml(text, str(path)) if _looks_like_yaml(text) else parse_ini(text, str(path))


def _looks_like_yaml(text: str) -> bool:
    """No suffix to go by (``hosts``): YAML when it reads as a mapping of group bodies."""
    import yaml
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return isinstance(data, dict) and all(isinstance(v, (dict, type(None))) for v in data.values())


def device_fields(host: str, variables: dict[str, Any], kind: str, tags: list[str],
                  defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """Profile fields of a host from its resolved variables (import and export share it)."""
    connection = variables.get("ansible_connection")
    local = connection == "local"
    fields: dict[str, Any] = {
        "name": host, "kind": kind, "tags": tuple(tags),
        "address": str(variables.get("ansible_host") or variables.get("ansible_ssh_host") or host),
        "transport": "local" if local else "ssh"}
    if not local:
        ssh = {**(defaults or {})}
        ssh.update({k: v for k, v in {
            "user": variables.get("ansible_user") or variables.get("ansible_ssh_user"),
            "port": int(variables.get("ansible_port") or variables.get("ansible_ssh_port") or 22),
            "key": variables.get("ansible_ssh_private_key_file") or variables.get("ansible_private_key_file"),
        }.items() if v is not None})
        fields["ssh"] = ssh
    python = str(variables.get("ansible_python_interpreter") or "python3")
    fields["python"] = "python3" if python.startswith("auto") else python
    for var, attr in (("collab_arch", "arch"), ("collab_workdir", "workdir"), ("collab_runtime", "runtime")):
        if variables.get(var):
            fields[attr] = str(variables[var])
    return fields


def to_devices(inv: Inventory, defaults: dict[str, Any] | None = None) -> list["Device"]:
    """One ``Device`` per host (file order), keeping its groups and own variables."""
    from pytest_collab.lan.profile import Device, SSHConfig
    from pytest_collab.lan.schema import NAME_RE
    devices = []
    for host, own in inv.hosts.items():
        if not NAME_RE.match(host):
            raise ProfileError(inv.source, "", f"host {host!r} can not be a device name (letters, digits, "
                                               "'.', '_', '-'); rename it in the inventory")
        bad = [g for g in inv.groups_of(host) if not NAME_RE.match(g)]
        if bad:
            raise ProfileError(inv.source, "", f"group {bad[0]!r} of host {host!r} can not be a kind or tag "
                                               "(letters, digits, '.', '_', '-'); rename it in the inventory")
        variables = inv.host_vars(host)
        for name in sorted(k for k, v in variables.items() if is_secret(k, v)):
            inv.problems.append(f"host {host}: variable {name!r} not imported: a secret; profiles hold none "
                                "(use ssh keys or the agent)")
        if variables.get("ansible_connection") not in CONNECTIONS:
            inv.problems.append(f"host {host}: ansible_connection={variables['ansible_connection']!r} "
                                "not supported; imported as ssh")
        kind, tags = inv.kind_and_tags(host, variables)
        fields = device_fields(host, variables, kind, tags, defaults)
        if "ssh" in fields:
            fields["ssh"] = SSHConfig(**fields["ssh"])
        groups = tuple(inv.direct_groups(host))       # ("ungrouped",) for a host in no group
        devices.append(Device(**fields, groups=groups,
                              vars={k: v for k, v in own.items() if not is_secret(k, v)}))
    return devices


def group_tree(inv: Inventory) -> dict[str, dict[str, Any]]:
    """The groups a profile keeps (``LAN.groups``): children and variables, secrets left out."""
    out: dict[str, dict[str, Any]] = {}
    for name, group in inv.groups.items():
        if name == "ungrouped":
            continue
        entry: dict[str, Any] = {}
        if group.hosts and name != "all":
            entry["hosts"] = list(group.hosts)          # member order only; devices' groups say who
        if group.children and name != "all":
            entry["children"] = list(group.children)
        variables = {k: v for k, v in group.vars.items() if not is_secret(k, v)}
        if variables:
            entry["vars"] = variables
        out[name] = entry
    return out


def merge_groups(lan: "LAN", inv: Inventory) -> None:
    """Fold an imported inventory's group tree into the profile's (later imports win)."""
    for name, entry in group_tree(inv).items():
        mine = lan.groups.setdefault(name, {})
        for key in ("hosts", "children"):
            for member in entry.get(key, []):
                mine.setdefault(key, [])
                if member not in mine[key]:
                    mine[key].append(member)
        if entry.get("vars"):
            mine["vars"] = {**mine.get("vars", {}), **entry["vars"]}
