"""Ansible inventories (INI and YAML) to profile devices, and a profile back to INI.

Labs already keep a ``hosts.ini``; importing it keeps one source of truth. Groups
become the device's kind (its most specific group) and tags (every other group it is
in, parents included). Anything not imported (secrets, unknown variables, patterns we
do not expand) lands in ``Inventory.problems`` so the CLI can print it: nothing is
dropped silently.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pytest_collab.errors import ProfileError

if TYPE_CHECKING:
    from pytest_collab.lan.profile import Device

SECRET_VARS = {"ansible_password", "ansible_ssh_pass", "ansible_become_pass",
               "ansible_become_password", "ansible_ssh_private_key_passphrase"}
# Ansible variable -> how it maps (the rest is reported).
IMPORTED_VARS = {"ansible_host", "ansible_ssh_host", "ansible_port", "ansible_ssh_port",
                 "ansible_user", "ansible_ssh_user", "ansible_ssh_private_key_file",
                 "ansible_private_key_file", "ansible_python_interpreter", "ansible_connection",
                 "collab_kind", "collab_tags", "collab_arch", "collab_workdir", "collab_runtime"}
RANGE_RE = re.compile(r"\[([0-9a-z]+):([0-9a-z]+)(?::(\d+))?\]")
SPECIAL = ("all", "ungrouped")


@dataclass
class Group:
    name: str
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass
class Inventory:
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)   # name -> host vars
    groups: dict[str, Group] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def group(self, name: str) -> Group:
        return self.groups.setdefault(name, Group(name))

    def add_host(self, name: str, group: str, variables: dict[str, Any]) -> None:
        self.hosts.setdefault(name, {}).update(variables)
        members = self.group(group).hosts
        if name not in members:
            members.append(name)

    def parents(self, group: str) -> list[str]:
        """Every ancestor group (children: declarations), nearest first."""
        out: list[str] = []
        todo = [g.name for g in self.groups.values() if group in g.children]
        while todo:
            name = todo.pop(0)
            if name not in out:
                out.append(name)
                todo += [g.name for g in self.groups.values() if name in g.children]
        return out

    def groups_of(self, host: str) -> list[str]:
        """Direct groups first (file order), then their ancestors; no all/ungrouped."""
        direct = [g.name for g in self.groups.values() if host in g.hosts]
        out = [g for g in direct if g not in SPECIAL]
        for g in direct:
            out += [p for p in self.parents(g) if p not in out and p not in SPECIAL]
        return out

    def host_vars(self, host: str) -> dict[str, Any]:
        """all < ancestors (farthest first) < direct groups < the host's own vars."""
        merged = dict(self.groups.get("all", Group("all")).vars)
        for g in reversed(self.groups_of(host)):
            merged.update(self.groups[g].vars)
        merged.update(self.hosts[host])
        return merged


def expand(pattern: str) -> list[str]:
    """Ansible host ranges: ``rpi-[01:03]`` -> rpi-01, rpi-02, rpi-03 (also ``[a:c]``)."""
    m = RANGE_RE.search(pattern)
    if not m:
        return [pattern]
    start, end, step = m.group(1), m.group(2), int(m.group(3) or 1)
    if start.isdigit() and end.isdigit():
        width = len(start) if start.startswith("0") else 0
        values = [str(i).zfill(width) for i in range(int(start), int(end) + 1, step)]
    else:
        values = [chr(c) for c in range(ord(start), ord(end) + 1, step)]
    head, tail = pattern[:m.start()], pattern[m.end():]
    return [name for v in values for name in expand(head + v + tail)]


def _value(text: str) -> Any:
    """INI values as Ansible reads them: quoted strings stay strings, else YAML scalars."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (str, int, float, bool)) or value is None else text


def _pairs(tokens: list[str], where: str, inv: Inventory) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep:
            inv.problems.append(f"{where}: {token!r} is not key=value; ignored")
            continue
        out[key] = _value(value)
    return out


def parse_ini(text: str, source: str = "<ini>") -> Inventory:
    import shlex
    inv = Inventory()
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"{source}:{number}"
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            m = re.match(r"^\[([^\]:]+)(?::(\w+))?\]\s*(?:[#;].*)?$", line)
            if not m or (m.group(2) or "hosts") not in ("hosts", "vars", "children"):
                inv.problems.append(f"{where}: section {line!r} not understood; skipped")
                section, kind = "", "skip"
                continue
            section, kind = m.group(1), m.group(2) or "hosts"
            inv.group(section)
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            inv.problems.append(f"{where}: {exc}; line skipped")
            continue
        if kind == "skip" or not tokens:
            continue
        if kind == "vars":
            inv.group(section).vars.update(_pairs(tokens, where, inv))
        elif kind == "children":
            if tokens[0] not in inv.group(section).children:
                inv.group(section).children.append(tokens[0])
            inv.group(tokens[0])
        else:
            variables = _pairs(tokens[1:], where, inv)
            for host in expand(tokens[0]):
                inv.add_host(host, section, variables)
    return inv


def parse_yaml(text: str, source: str = "<yaml>") -> Inventory:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(source, "", f"not valid YAML: {exc}") from None
    inv = Inventory()
    if not isinstance(data, dict):
        raise ProfileError(source, "", "an Ansible YAML inventory is a mapping of groups (all:)")

    def walk(name: str, body: Any, key: str) -> None:
        group = inv.group(name)
        if body is None:
            return
        if not isinstance(body, dict):
            inv.problems.append(f"{source}: {key}: expected a mapping; skipped")
            return
        for extra in set(body) - {"hosts", "vars", "children"}:
            inv.problems.append(f"{source}: {key}.{extra}: not an inventory key; ignored")
        for host, variables in (body.get("hosts") or {}).items():
            if variables is not None and not isinstance(variables, dict):
                inv.problems.append(f"{source}: {key}.hosts.{host}: vars must be a mapping")
                variables = {}
            for one in expand(str(host)):
                inv.add_host(one, name, dict(variables or {}))
        group.vars.update(body.get("vars") or {})
        for child, child_body in (body.get("children") or {}).items():
            if child not in group.children:
                group.children.append(child)
            walk(child, child_body, f"{key}.children.{child}")

    for name, body in data.items():
        walk(str(name), body, str(name))
    return inv


def load(path: Path) -> Inventory:
    """Read an INI or YAML inventory (by suffix, else by content)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(path, "", f"can not read the inventory: {exc}") from None
    is_yaml = path.suffix in (".yaml", ".yml") or (
        path.suffix not in (".ini", ".cfg") and re.match(r"^\s*all\s*:", text, re.M))
    return parse_yaml(text, str(path)) if is_yaml else parse_ini(text, str(path))


def to_devices(inv: Inventory, defaults: dict[str, Any] | None = None) -> list["Device"]:
    """One ``Device`` per host; what can not be imported is added to ``inv.problems``."""
    from pytest_collab.lan.profile import Device, SSHConfig
    devices = []
    for host in inv.hosts:
        v = inv.host_vars(host)
        groups = inv.groups_of(host)
        for name in sorted(set(v) - IMPORTED_VARS):
            why = ("a secret; profiles hold none (use ssh keys or the agent)"
                   if name in SECRET_VARS else "no profile field for it")
            inv.problems.append(f"host {host}: variable {name!r} not imported: {why}")
        kind = str(v.get("collab_kind") or (groups[0] if groups else "device"))
        tags = [g for g in groups if g != kind]
        extra = v.get("collab_tags") or []
        tags += [t for t in (extra.split(",") if isinstance(extra, str) else extra) if t not in tags]
        local = v.get("ansible_connection") == "local"
        if v.get("ansible_connection") not in (None, "local", "ssh", "paramiko"):
            inv.problems.append(f"host {host}: ansible_connection={v['ansible_connection']!r} "
                                f"not supported; imported as ssh")
        ssh = None
        if not local:
            ssh = SSHConfig(**{**(defaults or {}), **{k: val for k, val in {
                "user": v.get("ansible_user") or v.get("ansible_ssh_user"),
                "port": int(v.get("ansible_port") or v.get("ansible_ssh_port") or 22),
                "key": v.get("ansible_ssh_private_key_file") or v.get("ansible_private_key_file"),
            }.items() if val is not None}})
        python = str(v.get("ansible_python_interpreter") or "python3")
        fields: dict[str, Any] = {
            "name": re.sub(r"[^A-Za-z0-9_.-]", "-", host), "kind": kind,
            "address": str(v.get("ansible_host") or v.get("ansible_ssh_host") or host),
            "transport": "local" if local else "ssh", "tags": tuple(tags), "ssh": ssh,
            "python": "python3" if python.startswith("auto") else python}
        for var, attr in (("collab_arch", "arch"), ("collab_workdir", "workdir"),
                          ("collab_runtime", "runtime")):
            if v.get(var):
                fields[attr] = str(v[var])
        devices.append(Device(**fields))
    return devices


def to_ini(devices: list["Device"]) -> str:
    """An Ansible INI inventory: one group per kind, tag groups as children-free groups."""
    groups: dict[str, list[str]] = {d.kind: [] for d in devices}   # kinds first
    for d in devices:
        parts = [d.name]
        if d.transport == "local":
            parts.append("ansible_connection=local")
        else:
            parts.append(f"ansible_host={d.address}")
            if d.ssh is not None:
                if d.ssh.port != 22:
                    parts.append(f"ansible_port={d.ssh.port}")
                if d.ssh.user:
                    parts.append(f"ansible_user={d.ssh.user}")
                if d.ssh.key:
                    parts.append(f"ansible_ssh_private_key_file={d.ssh.key}")
        if d.tags:   # with tag groups around, say which group is the kind
            parts.append(f"collab_kind={d.kind}")
        if d.python != "python3":
            parts.append(f"ansible_python_interpreter={d.python}")
        groups.setdefault(d.kind, []).append(" ".join(parts))    # vars once, with the kind
        for tag in d.tags:
            groups.setdefault(tag, []).append(d.name)
    out = ["# written by pytest-collab; kinds and tags are groups"]
    for group, members in groups.items():
        out.append(f"\n[{group}]")
        out += members
    return "\n".join(out) + "\n"
