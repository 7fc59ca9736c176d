"""Reading Ansible inventories (INI and YAML) by Ansible's own rules.

What ``ansible-inventory`` refuses is refused here too, with the file and line and
Ansible's words for it: an unknown section type, ``key = value`` with spaces or an inline
``;`` comment on a host line (only ``#`` starts a comment there), a bad range
(``h[01:100]``: begin and end of unequal width), a ``:children`` entry naming a group
never defined. Values are read as Ansible reads them: ``ast.literal_eval`` in INI
(``1`` is an int, ``yes`` a string), YAML types in YAML; ``host:port`` sets
``ansible_port``. The rules are restated from ``ansible/plugins/inventory/{ini,yaml}.py``.
"""
from __future__ import annotations

import ast
import re
import shlex
import string
import warnings
from typing import Any

from pytest_collab.errors import ProfileError
from pytest_collab.lan.inventory import Inventory

SECTION_RE = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
GROUP_NAME_RE = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")
# Ansible's parse_address: [host]:port or host:port, the host a name/IPv4 (ranges allowed)
# or an IPv6 address; anything else stays one pattern without a port.
BRACKETED_PORT_RE = re.compile(r"^\[(.+)\]:([0-9]+)$")
HOST_PORT_RE = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$")
_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_LABEL = rf"(?:\w|{_RANGE})(?:[\w_-]|{_RANGE})*(?<![_-])"
HOSTNAME_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.I | re.UNICODE)


def fail(source: str, line: int | None, problem: str) -> ProfileError:
    return ProfileError(f"{source}:{line}" if line else source, "", problem)


def literal(text: str) -> Any:
    """An INI value: a Python literal when it is one (``1``, ``True``, ``[1, 2]``), else text."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    if value is ... or isinstance(value, complex):
        return str(value) if isinstance(value, complex) else "..."
    if isinstance(value, (set, tuple)):
        return list(value)
    return value


def expand_range(pattern: str) -> list[str]:
    """``rpi-[01:03]`` -> rpi-01..rpi-03; ``[a:c]``; ``[1:9:2]``; nested left to right.

    Raises ``ValueError`` with Ansible's message for what Ansible refuses.
    """
    if "[" not in pattern:
        return [pattern]
    head, nrange, tail = pattern.replace("[", "|", 1).replace("]", "|", 1).split("|")
    bounds = nrange.split(":")
    if len(bounds) not in (2, 3):
        raise ValueError("host range must be begin:end or begin:end:step")
    beg, end = bounds[0] or "0", bounds[1]
    step = int(bounds[2]) if len(bounds) == 3 else 1
    if not end:
        raise ValueError("host range must specify end value")
    width = len(beg) if beg[0] == "0" and len(beg) > 1 else 0
    if width and width != len(end):
        raise ValueError("host range must specify equal-length begin and end formats")
    if beg in string.ascii_letters and end in string.ascii_letters:
        i_beg, i_end = string.ascii_letters.index(beg), string.ascii_letters.index(end)
        if i_beg > i_end:
            raise ValueError("host range must have begin <= end")
        if step == 0:
            raise ValueError("slice step cannot be zero")
        seq: list[str] = list(string.ascii_letters[i_beg:i_end + 1:step])
    else:
        if step == 0:
            raise ValueError("range() arg 3 must not be zero")
        seq = [str(i).zfill(width) for i in range(int(beg), int(end) + 1, step)]
    return [name for value in seq for name in expand_range(head + value + tail)]


def host_pattern(pattern: str) -> tuple[list[str], int | None]:
    """``web:2222`` -> (['web'], 2222); ``h[1:3]`` -> (['h1', 'h2', 'h3'], None)."""
    port = None
    for regex in (BRACKETED_PORT_RE, HOST_PORT_RE):
        m = regex.match(pattern)
        if m and _valid_host(m.group(1)):
            pattern, port = m.group(1), int(m.group(2))
            break
    return expand_range(pattern), port


def _valid_host(host: str) -> bool:
    import ipaddress
    if HOSTNAME_RE.match(host):
        return True
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _hosts(inv: Inventory, pattern: str, group: str, variables: dict[str, Any],
           source: str, line: int | None) -> None:
    try:
        names, port = host_pattern(pattern)
    except ValueError as exc:
        raise fail(source, line, f"{exc} (in {pattern!r})") from None
    if not names:
        inv.problems.append(f"{source}:{line}: range {pattern!r} expands to no host")
    for name in names:
        if name.strip() == "---":
            raise fail(source, line, "invalid host pattern '---': is this a YAML file?")
        inv.add_host(name, group, variables, port)


def parse_ini(text: str, source: str = "<ini>") -> Inventory:
    """An INI inventory as ``ansible-inventory`` reads it; refusals name file:line."""
    inv = Inventory(source)
    pending: dict[str, dict[str, Any]] = {}     # groups named in :children/:vars before defined
    group, state = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        m = SECTION_RE.match(line)
        if m:
            group, state = m.group(1), m.group(2) or "hosts"
            if state not in ("hosts", "children", "vars"):
                raise fail(source, number, f"Section [{group}:{state}] has unknown type: {state}")
            if group not in inv.groups:
                if state == "vars" and group not in pending:
                    pending[group] = {"line": number, "state": state, "parents": []}
                inv.group(group)
            if group in pending and state != "vars":
                if pending[group]["state"] == "children":
                    _settle(inv, group, pending)
                else:
                    del pending[group]
            continue
        if line.startswith("[") and line.endswith("]"):
            raise fail(source, number, f"Invalid section entry: {line!r}; no spaces or other invalid "
                                       "characters in a section entry")
        if state == "hosts":
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError as exc:
                raise fail(source, number, f"Error parsing host definition {line!r}: {exc}") from None
            if tokens[0].endswith(":"):
                raise fail(source, number, f"Invalid host pattern {tokens[0]!r}: ending in ':' is not allowed, "
                                           "this character is reserved to provide a port")
            variables: dict[str, Any] = {}
            for token in tokens[1:]:
                key, sep, value = token.partition("=")
                if not sep:
                    hint = " (only '#' starts a comment here)" if token.startswith(";") else \
                        " (write key=value without spaces)" if token == "=" or "=" in tokens[1:] else ""
                    raise fail(source, number, f"Expected key=value host variable assignment, got: {token}{hint}")
                variables[key] = literal(value)
            _hosts(inv, tokens[0], group, variables, source, number)
        elif state == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                raise fail(source, number, f"Expected key=value, got: {line}")
            inv.set_group_var(group, key.strip(), literal(value.strip()))
        else:
            m = GROUP_NAME_RE.match(line)
            if not m:
                raise fail(source, number, f"Expected group name, got: {line}")
            child = m.group(1)
            if child in inv.groups:
                inv.add_child(group, child, f"{source}:{number}")
            elif child in pending:
                pending[child]["parents"].append(group)
            else:
                pending[child] = {"line": number, "state": "children", "parents": [group]}
    for name, decl in pending.items():
        if decl["state"] == "vars":
            raise fail(source, decl["line"], f"Section [{name}:vars] not valid for undefined group {name!r}")
        raise fail(source, decl["line"], f"Section [{decl['parents'][-1]}:children] includes undefined "
                                         f"group {name!r}")
    return _checked(inv)


def _checked(inv: Inventory) -> Inventory:
    for name in sorted(set(inv.hosts) & set(inv.groups)):
        inv.problems.append(f"{inv.source}: found both group and host with same name: {name} (Ansible warns too)")
    return inv


def _settle(inv: Inventory, group: str, pending: dict[str, dict[str, Any]]) -> None:
    for parent in pending[group]["parents"]:
        inv.add_child(parent, group, inv.source)
        if parent in pending and pending[parent]["state"] == "children":
            _settle(inv, parent, pending)
    pending.pop(group, None)


def parse_yaml(text: str, source: str = "<yaml>") -> Inventory:
    """A YAML inventory as ``ansible-inventory`` reads it (groups of hosts/vars/children)."""
    import yaml
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise fail(source, mark.line + 1 if mark else None, f"not valid YAML: {exc}") from None
    if not data:
        raise fail(source, None, "Parsed empty YAML file")
    if not isinstance(data, dict):
        raise fail(source, None, f"YAML inventory has invalid structure, it should be a dictionary, "
                                 f"got: {type(data).__name__}")
    if data.get("plugin"):
        raise fail(source, None, "Plugin configuration YAML file, not YAML inventory")
    inv = Inventory(source)
    for name, body in data.items():
        _yaml_group(inv, str(name), body, str(name))
    return _checked(inv)


def _yaml_group(inv: Inventory, name: str, body: Any, where: str) -> str | None:
    if not isinstance(body, (dict, type(None))):
        inv.problems.append(f"{inv.source}: {where}: skipped, not a valid group definition (Ansible skips it too)")
        return None
    inv.group(name)
    body = dict(body or {})
    for section in ("vars", "children", "hosts"):
        if isinstance(body.get(section), str):
            body[section] = {body[section]: None}
        if section in body and not isinstance(body[section], (dict, type(None))):
            raise fail(inv.source, None, f"Invalid {section!r} entry for {name!r} group ({where}), requires a "
                                         f"dictionary, found {type(body[section]).__name__!r} instead")
    for key, value in body.items():
        if not isinstance(value, (dict, type(None))):
            inv.problems.append(f"{inv.source}: {where}.{key}: skipped, not a mapping (Ansible skips it too)")
        elif value is None:
            continue
        elif key == "vars":
            for var, val in value.items():
                inv.set_group_var(name, str(var), val)
        elif key == "children":
            for child, child_body in value.items():
                sub = _yaml_group(inv, str(child), child_body, f"{where}.children.{child}")
                if sub is not None:
                    inv.add_child(name, sub, f"{inv.source}: {where}")
        elif key == "hosts":
            for pattern, variables in value.items():
                if not isinstance(pattern, str):
                    raise fail(inv.source, None, f"Host pattern {pattern} must be a string ({where}.hosts). "
                                                 "Enclose integers/floats in quotation marks.")
                if variables is not None and not isinstance(variables, dict):
                    raise fail(inv.source, None, f"{where}.hosts.{pattern}: host variables must be a mapping")
                _hosts(inv, pattern, name, dict(variables or {}), inv.source, None)
        else:
            inv.problems.append(f"{inv.source}: {where}.{key}: skipped unexpected key, only 'vars', 'children' "
                                "and 'hosts' are valid (Ansible skips it too)")
    return name
