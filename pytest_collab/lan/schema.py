"""Validation of a LAN profile document (the YAML, already parsed) into plain dicts.

Kept apart from ``profile.py`` so the model stays readable and so every check lives
in one place. Nothing here builds dataclasses: the functions return normalized dicts
(only keys the user gave, with ``kinds`` resources and ``defaults`` merged in) and
``profile.py`` turns them into ``Device``/``Controller``/``LAN``.

Every problem raises ``ProfileError(path, key, problem)`` with a key path such as
``devices[1].ssh.port``, so a user never sees a traceback from deep inside. The
schema itself is documented in ``profile.py`` and ``docs/profiles.md``.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml

from pytest_collab.errors import ProfileError

TRANSPORTS = ("local", "ssh")
RUNTIMES = ("process", "docker")
HOST_KEY_POLICIES = ("reject", "tofu")
# Profiles are committed and shared; anything that looks like a secret is refused.
SECRET_KEYS = frozenset({"password", "passphrase", "key_text", "private_key"})
# Names end up in file names (logs/<test>/<device>.<program>.log) and in "rpi#2".
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")

TOP_KEYS = ("name", "description", "controller", "kinds", "defaults", "devices", "emulation",
            "secret_env", "groups")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONTROLLER_KEYS = ("name", "address", "facts")
KIND_KEYS = ("description", "resources")
SSH_KEYS = ("user", "port", "key", "key_env", "agent", "host_key_policy",
            "known_hosts", "connect_timeout")
DEVICE_KEYS = ("name", "kind", "address", "transport", "runtime", "arch", "os", "mac",
               "tags", "resources", "ssh", "python", "workdir", "facts", "facts_time", "link",
               "power_meter", "groups", "vars")   # groups/vars: Ansible inventory round trip (lan/inventory.py)
# Link shaping of an emulated device's uplink (docs/emulated.md); all optional numbers.
LINK_KEYS = ("rate_mbit", "delay_ms", "jitter_ms", "loss_pct")
# What one device may inherit: identity (name, address, mac, facts) stays per device.
DEFAULT_KEYS = ("transport", "runtime", "arch", "os", "tags", "resources", "ssh",
                "python", "workdir")
# Mappings merged key by key (kinds < defaults < device); everything else replaces.
MERGED_KEYS = ("resources", "ssh")


def join(key: str, sub: str | int) -> str:
    """Extend a key path: ``join("devices", 1)`` -> ``devices[1]``."""
    if isinstance(sub, int):
        return f"{key}[{sub}]"
    return f"{key}.{sub}" if key else sub


def show(value: Any) -> str:
    """A value and its type for messages: ``42 (int)``, ``'x' (str)``, ``null``."""
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{text} ({type(value).__name__})"


class _Loader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, yaml.Mark] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # '<<: *anchor' keys are overridable by design
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, Mapping) or isinstance(key, list):
            continue  # unhashable; the schema check names it
        mark = key_node.start_mark
        if key in seen:
            first = seen[key]
            raise yaml.constructor.ConstructorError(
                None, None,
                f"duplicate key {key!r} (first at line {first.line + 1})", mark)
        seen[key] = mark
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml(text: str, path: Path | str) -> Any:
    """Parse YAML text; a syntax error names the line and column from yaml's mark."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ProfileError(path, "", f"invalid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(path, "", f"invalid YAML: {exc}") from None


class Schema:
    """Type and range checks bound to one file, so each failure names it."""

    def __init__(self, path: Path | str) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ProfileError(self.path, key, problem)

    def mapping(self, value: Any, key: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"expected a mapping, got {show(value)}")
        return value

    def keys(self, data: dict, key: str, allowed: Iterable[str], required: Iterable[str] = ()) -> None:
        """Refuse unknown keys (with a did-you-mean) and report missing required ones."""
        allowed = tuple(allowed)
        for name in data:
            if not isinstance(name, str):
                self.fail(key, f"keys must be strings, got {show(name)}")
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else "allowed keys: " + ", ".join(sorted(allowed))
                self.fail(join(key, name), f"unknown key; {hint}")
        for name in required:
            if data.get(name) is None:
                self.fail(key, f"missing required key {name!r}")

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {show(value)}")
        if not value.strip():
            self.fail(key, "must not be empty")
        return value

    def optional_string(self, value: Any, key: str) -> str | None:
        return None if value is None else self.string(value, key)

    def name(self, value: Any, key: str) -> str:
        text = self.string(value, key)
        if not NAME_RE.match(text):
            self.fail(key, f"{text!r} is not a valid name; use letters, digits, '.', '_' and '-'")
        return text

    def integer(self, value: Any, key: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"expected an integer, got {show(value)}")
        if not low <= value <= high:
            self.fail(key, f"expected an integer from {low} to {high}, got {value}")
        return value

    def number(self, value: Any, key: str, *, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"expected a number, got {show(value)}")
        if positive and value <= 0:
            self.fail(key, f"expected a number greater than 0, got {value}")
        if value < 0:
            self.fail(key, f"expected a number of 0 or more, got {value}")
        return value

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {show(value)}")
        return value

    def choice(self, value: Any, key: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            self.fail(key, f"expected one of {', '.join(choices)}; got {show(value)}")
        return value

    def names(self, value: Any, key: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.fail(key, f"expected a list of names, got {show(value)}")
        return tuple(self.name(item, join(key, i)) for i, item in enumerate(value))

    def numbers(self, value: Any, key: str) -> dict[str, float]:
        data = self.mapping(value, key)
        return {self.string(k, key): self.number(v, join(key, k)) for k, v in data.items()}


def check_no_secrets(node: Any, key: str, schema: Schema) -> None:
    """Refuse secret-looking keys anywhere, and key text pasted into ``key:``."""
    if isinstance(node, dict):
        for name, value in node.items():
            sub = join(key, str(name))
            if isinstance(name, str) and name.lower() in SECRET_KEYS:
                schema.fail(sub, "profiles hold no secrets; give the path of a key file with "
                                 "'key:' or the name of an environment variable holding that "
                                 "path with 'key_env:'")
            if name == "key" and isinstance(value, str) and "-----BEGIN" in value:
                schema.fail(sub, "looks like private key text; 'key:' takes the path of a key "
                                 "file (profiles hold no secrets)")
            check_no_secrets(value, sub, schema)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            check_no_secrets(item, join(key, i), schema)


def check_ssh(raw: Any, key: str, schema: Schema) -> dict:
    data = schema.mapping(raw, key)
    schema.keys(data, key, SSH_KEYS)
    out: dict[str, Any] = {}
    for name, value in data.items():
        sub = join(key, name)
        if value is None:
            continue
        if name == "port":
            out[name] = schema.integer(value, sub, 1, 65535)
        elif name == "agent":
            out[name] = schema.boolean(value, sub)
        elif name == "host_key_policy":
            out[name] = schema.choice(value, sub, HOST_KEY_POLICIES)
        elif name == "connect_timeout":
            out[name] = schema.number(value, sub, positive=True)
        elif name == "key_env":
            if not ENV_NAME_RE.match(schema.string(value, sub)):
                schema.fail(sub, f"{value!r} is not an environment variable name")
            out[name] = value
        else:
            out[name] = schema.string(value, sub)
    return out


def check_fields(data: dict, key: str, schema: Schema) -> dict:
    """Check the device fields present in ``data`` (a device or the ``defaults``)."""
    out: dict[str, Any] = {}
    for name, value in data.items():
        sub = join(key, name)
        if value is None:
            continue  # null means "not given": the default (arch: null = detect)
        if name == "ssh":
            out[name] = check_ssh(value, sub, schema)
        elif name in ("name", "kind"):
            out[name] = schema.name(value, sub)
        elif name == "transport":
            out[name] = schema.choice(value, sub, TRANSPORTS)
        elif name == "runtime":
            out[name] = schema.choice(value, sub, RUNTIMES)
        elif name in ("tags", "groups"):
            out[name] = schema.names(value, sub)
        elif name == "vars":
            out[name] = schema.mapping(value, sub)
        elif name == "resources":
            out[name] = schema.numbers(value, sub)
        elif name == "link":
            out[name] = check_link(value, sub, schema)
        elif name == "power_meter":
            out[name] = check_power_meter(value, sub, schema)
        elif name == "facts":
            out[name] = schema.mapping(value, sub)
        elif name == "facts_time":
            # an unquoted timestamp arrives as a datetime; keep the text form
            out[name] = value.isoformat() if hasattr(value, "isoformat") else schema.string(value, sub)
        elif name == "mac":
            out[name] = check_mac(value, sub, schema)
        else:
            out[name] = schema.string(value, sub)
    return out


def check_link(value: Any, key: str, schema: Schema) -> dict[str, float]:
    """``link: {rate_mbit: 100, delay_ms: 0, jitter_ms: 0, loss_pct: 0}`` (numbers >= 0)."""
    data = schema.mapping(value, key)
    schema.keys(data, key, LINK_KEYS)
    out = {k: schema.number(v, join(key, k)) for k, v in data.items() if v is not None}
    if out.get("loss_pct", 0) > 100:
        schema.fail(join(key, "loss_pct"), f"a percentage from 0 to 100, got {out['loss_pct']}")
    return out


def check_power_meter(value: Any, key: str, schema: Schema) -> dict[str, Any]:
    """``power_meter: {command: ...}`` or ``{serial: /dev/ttyUSB0}`` (docs/energy.md); the
    wrapper that reads the meter owns the rule."""
    from pytest_collab.wrapper.meter import check

    try:
        return check(schema.mapping(value, key))
    except ValueError as exc:
        schema.fail(key, str(exc))


def check_mac(value: Any, key: str, schema: Schema) -> str:
    if not isinstance(value, str):
        # YAML 1.1 reads 00:11:22:33:44:55 as a base-60 integer
        schema.fail(key, f"expected a string, got {show(value)}; quote MAC addresses: "
                         'mac: "00:11:22:33:44:55"')
    if not MAC_RE.match(value):
        schema.fail(key, f"{value!r} is not a MAC address like \"dc:a6:32:01:02:03\"")
    return value.lower()


def merge(*layers: dict) -> dict:
    """Later layers win; ``resources`` and ``ssh`` merge key by key."""
    out: dict[str, Any] = {}
    for layer in layers:
        for name, value in layer.items():
            if name in MERGED_KEYS and isinstance(out.get(name), dict):
                out[name] = {**out[name], **value}
            else:
                out[name] = value
    return out


def check_device(raw: Any, key: str, schema: Schema, defaults: dict, kinds: dict) -> dict:
    """One device entry, merged over its kind's resources and the ``defaults``."""
    if not isinstance(raw, dict):
        schema.fail(key, f"expected a mapping (name:, kind:, address:, ...), got {show(raw)}")
    schema.keys(raw, key, DEVICE_KEYS, required=("name", "kind"))
    own = check_fields(raw, key, schema)
    kind = own["kind"]
    if kinds and kind not in kinds:
        schema.fail(join(key, "kind"),
                    f"unknown kind {kind!r}; declared kinds: {', '.join(sorted(kinds))}")
    by_kind = {"resources": dict(kinds[kind]["resources"])} if kinds.get(kind, {}).get("resources") else {}
    device = merge(by_kind, defaults, own)
    if device.get("transport") == "ssh":
        if "address" not in device:
            schema.fail(key, "missing required key 'address' (transport is 'ssh')")
        device.setdefault("ssh", {})
    return device


def check_controller(raw: Any, schema: Schema) -> dict | None:
    if raw is None:
        return None
    data = schema.mapping(raw, "controller")
    schema.keys(data, "controller", CONTROLLER_KEYS, required=("name", "address"))
    return {
        "name": schema.name(data["name"], "controller.name"),
        "address": schema.string(data["address"], "controller.address"),
        "facts": schema.mapping(data.get("facts"), "controller.facts"),
    }


def check_kinds(raw: Any, schema: Schema) -> dict[str, dict]:
    kinds: dict[str, dict] = {}
    for name, value in schema.mapping(raw, "kinds").items():
        key = join("kinds", str(name))
        schema.name(name, key)
        data = schema.mapping(value, key)
        schema.keys(data, key, KIND_KEYS)
        kind: dict[str, Any] = {}
        if data.get("description") is not None:
            kind["description"] = schema.string(data["description"], join(key, "description"))
        if data.get("resources") is not None:
            kind["resources"] = schema.numbers(data["resources"], join(key, "resources"))
        kinds[name] = kind
    return kinds


def check_secret_env(value: Any, schema: Schema) -> tuple[str, ...]:
    """``secret_env: [API_TOKEN, ...]``: names (never values) of environment variables whose
    values a run redacts (``***``) from everything it writes."""
    if value is None:
        return ()
    if not isinstance(value, list):
        schema.fail("secret_env", f"expected a list of environment variable names, got {show(value)}")
    for i, name in enumerate(value):
        if not isinstance(name, str) or not ENV_NAME_RE.match(name):
            schema.fail(join("secret_env", i), f"{show(name)} is not an environment variable name; "
                                               f"list names here, never the secret values")
    return tuple(value)
def check_groups(raw: Any, schema: Schema) -> dict[str, dict]:
    """``groups: {edge: {children: [rpi], vars: {...}}}``: the Ansible group tree kept for export."""
    groups: dict[str, dict] = {}
    for name, value in schema.mapping(raw, "groups").items():
        key = join("groups", str(name))
        data = schema.mapping(value, key)
        schema.keys(data, key, ("hosts", "children", "vars"))
        hosts, children, variables = data.get("hosts"), data.get("children"), data.get("vars")
        groups[schema.name(name, key)] = {k: v for k, v in (
            ("hosts", list(schema.names(hosts, join(key, "hosts"))) if hosts else None),
            ("children", list(schema.names(children, join(key, "children"))) if children else None),
            ("vars", schema.mapping(variables, join(key, "vars")) if variables else None)) if v is not None}
    return groups


def check_document(data: Any, path: Path | str, stem: str | None = None) -> dict:
    """Validate a whole profile; returns ``name``, ``description``, ``controller``,
    ``kinds`` and ``devices`` (a list of normalized device dicts)."""
    schema = Schema(path)
    if data is None:
        schema.fail("", "the file is empty; a profile needs at least 'devices:'")
    if not isinstance(data, dict):
        schema.fail("", "the top level must be a mapping (name:, controller:, devices:), "
                        f"got {type(data).__name__}")
    check_no_secrets(data, "", schema)
    schema.keys(data, "", TOP_KEYS)
    name = data.get("name", stem)
    if name is None:
        schema.fail("", "missing required key 'name'")
    name = schema.name(name, "name")
    description = data.get("description") or ""
    if description:
        description = schema.string(description, "description")
    kinds = check_kinds(data.get("kinds"), schema)
    defaults_raw = schema.mapping(data.get("defaults"), "defaults")
    schema.keys(defaults_raw, "defaults", DEFAULT_KEYS)
    defaults = check_fields(defaults_raw, "defaults", schema)
    raw_devices = data.get("devices")
    if raw_devices is None:
        schema.fail("", "missing required key 'devices'")
    if not isinstance(raw_devices, list):
        schema.fail("devices", f"expected a list of devices, got {show(raw_devices)}")
    if not raw_devices:
        schema.fail("devices", "the list is empty; a profile needs at least one device")
    devices: list[dict] = []
    first_at: dict[str, str] = {}
    for i, raw in enumerate(raw_devices):
        key = join("devices", i)
        device = check_device(raw, key, schema, defaults, kinds)
        if device["name"] in first_at:
            schema.fail(join(key, "name"), f"duplicate device name {device['name']!r} "
                                           f"(first at {first_at[device['name']]})")
        first_at[device["name"]] = key
        devices.append(device)
    emulation = schema.mapping(data.get("emulation"), "emulation")
    groups = check_groups(data.get("groups"), schema)
    return {"name": name, "groups": groups, "description": description, "kinds": kinds, "emulation": emulation,
            "secret_env": check_secret_env(data.get("secret_env"), schema),
            "controller": check_controller(data.get("controller"), schema), "devices": devices}
