"""LAN profiles: which devices a lab has and how to reach them (YAML <-> dataclasses).

A profile is one YAML file, found by ``--lan=NAME`` as
``<rootdir>/network_profiles/NAME.yaml`` or, failing that, the embedded
``pytest_collab/profiles/NAME.yaml`` (``local`` ships there); ``--lan=path.yaml`` names
a file directly. The schema (full reference: ``docs/profiles.md``)::

    name: lab1                    # defaults to the file stem
    description: ...
    controller: {name: laptop, address: 192.168.1.10}    # default: localhost, 127.0.0.1
    kinds:                        # optional; when present every device kind must be declared
      rpi: {description: Raspberry Pi 4, resources: {cpus: 4, memory_mb: 4096}}
    defaults: {transport: ssh, ssh: {user: pi, key: ~/.ssh/id_ed25519}}   # merged into each device
    secret_env: [API_TOKEN]       # env names whose values are redacted (***) from the run
    devices:                      # required, at least one
      - name: rpi-01              # required; letters, digits, '.', '_', '-'
        kind: rpi                 # required
        address: 192.168.1.21     # required when transport is ssh; default 127.0.0.1
        transport: ssh            # local | ssh
        runtime: process          # process | docker
        arch: arm64               # null = detect
        os: ...
        mac: "dc:a6:32:01:02:03"  # quoted: YAML reads some MACs as numbers
        tags: [edge, camera]
        link: {rate_mbit: 100, delay_ms: 0, loss_pct: 0}   # emulated lab only (docs/emulated.md)
        resources: {cpus: 4, memory_mb: 4096}
        ssh: {user: pi, port: 22, key: ~/.ssh/id_ed25519, key_env: ..., agent: true,
              host_key_policy: reject, known_hosts: ..., connect_timeout: 10}
        python: python3
        workdir: /tmp/pytest-collab
        facts: {...}              # filled by `collab facts`
        facts_time: "..."

Merging: a device's ``resources`` start from its kind's, then ``defaults``, then its
own (key by key, as ``ssh``); other keys given on the device replace the default.
Profiles are committed and shared, so they hold no secrets: ``password``,
``passphrase``, ``key_text`` and ``private_key`` are refused anywhere.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_collab.errors import CollabError, ProfileError
from pytest_collab.lan.schema import DEVICE_KEYS, NAME_RE, Schema, check_document, check_fields, check_ssh, parse_yaml

EMBEDDED_DIR = Path(__file__).parent.parent / "profiles"
PROFILE_DIR = "network_profiles"
SUFFIXES = (".yaml", ".yml")


def _non_default(obj: Any, always: tuple[str, ...] = ()) -> dict[str, Any]:
    """Fields of a dataclass in declaration order, leaving out unset defaults (readable YAML)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name in always:
            out[f.name] = value
            continue
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        if f.default_factory is not dataclasses.MISSING and value == f.default_factory():
            continue
        out[f.name] = value
    return out


@dataclass
class SSHConfig:
    """How to reach a device over SSH; ``key`` is a path, never key text."""

    user: str | None = None
    port: int = 22
    key: str | None = None
    key_env: str | None = None          # env var holding the key PATH
    agent: bool = True
    host_key_policy: str = "reject"     # "reject" | "tofu"
    known_hosts: str | None = None      # default: <profile stem>.known_hosts beside the profile
    connect_timeout: float = 10.0

    def to_dict(self) -> dict[str, Any]:
        return _non_default(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str = "<dict>", key: str = "ssh") -> SSHConfig:
        return cls(**check_ssh(data, key, Schema(path)))


@dataclass
class Device:
    """One machine (or virtual device) experiments run on."""

    name: str
    kind: str                           # free text: rpi, jetson, server, laptop, ...
    address: str = "127.0.0.1"
    transport: str = "local"            # "local" | "ssh"
    runtime: str = "process"            # "process" | "docker"
    arch: str | None = None             # amd64 | arm64 | jetson ...; None = detect
    os: str | None = None
    mac: str | None = None
    tags: tuple[str, ...] = ()
    resources: dict[str, float] = field(default_factory=dict)   # hints: cpus, memory_mb
    ssh: SSHConfig | None = None
    python: str = "python3"             # interpreter on the device
    workdir: str = "/tmp/pytest-collab"  # where code is synced on the device
    facts: dict[str, object] = field(default_factory=dict)      # Ansible-named, `collab facts`
    facts_time: str | None = None
    link: dict[str, float] = field(default_factory=dict)         # emulated uplink shaping
    power_meter: dict[str, Any] = field(default_factory=dict)  # external meter, docs/energy.md
    groups: tuple[str, ...] = ()        # Ansible inventory groups naming it (round trip)
    vars: dict[str, Any] = field(default_factory=dict)           # its own Ansible variables

    def matches(self, want: str) -> bool:
        """A marker's ``want`` is either a kind or a tag."""
        return self.kind == want or want in self.tags

    def to_dict(self) -> dict[str, Any]:
        data = _non_default(self, always=("name", "kind", "address", "transport", "runtime"))
        for name in ("tags", "groups"):
            if name in data:
                data[name] = list(data[name])
        if self.ssh is not None:
            data["ssh"] = self.ssh.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str = "<dict>", key: str = "device") -> Device:
        """Validate one device mapping (no ``defaults``/``kinds`` merging) and build it."""
        schema = Schema(path)
        if not isinstance(data, dict):
            schema.fail(key, "expected a mapping")
        schema.keys(data, key, DEVICE_KEYS, required=("name", "kind"))
        return _device(check_fields(data, key, schema))


def _device(fields: dict[str, Any]) -> Device:
    """Build a Device from an already validated dict."""
    fields = dict(fields)
    if "ssh" in fields:
        fields["ssh"] = SSHConfig(**fields["ssh"])
    for name in ("tags", "groups"):
        if name in fields:
            fields[name] = tuple(fields[name])
    return Device(**fields)


@dataclass
class Controller:
    """The machine pytest runs on; devices may need its address (e.g. to pull code)."""

    name: str = "localhost"
    address: str = "127.0.0.1"
    facts: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return _non_default(self, always=("name", "address"))


@dataclass
class LAN:
    """A loaded profile. ``path`` is where it was read from (not part of equality)."""

    name: str
    path: Path | None = field(compare=False)
    controller: Controller
    devices: list[Device]
    kinds: dict[str, dict] = field(default_factory=dict)
    description: str = ""
    emulation: dict[str, Any] = field(default_factory=dict)   # emulated lab settings (emulated.py)
    groups: dict[str, dict] = field(default_factory=dict)     # Ansible group tree (lan/inventory.py)
    secret_env: tuple[str, ...] = ()    # env names whose values are redacted (secrets.py)

    @property
    def emulated(self) -> bool:
        """An ``emulation:`` section: the devices are containers on this host (labs/), so
        their addresses must be on a network this host created (labs/guard.py)."""
        return bool(self.emulation)

    def device(self, name: str) -> Device:
        """The device called ``name``; the error lists the names there are."""
        for device in self.devices:
            if device.name == name:
                return device
        names = ", ".join(d.name for d in self.devices)
        where = f" ({self.path})" if self.path else ""
        raise CollabError(f"profile {self.name!r}{where} has no device {name!r}; "
                          f"its devices: {names}")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if self.description:
            data["description"] = self.description
        data["controller"] = self.controller.to_dict()
        if self.kinds:
            data["kinds"] = self.kinds
        data["devices"] = [d.to_dict() for d in self.devices]
        if self.emulation:
            data["emulation"] = self.emulation
        if self.secret_env:
            data["secret_env"] = list(self.secret_env)
        if self.groups:
            data["groups"] = self.groups
        return data

    @classmethod
    def from_dict(cls, data: Any, path: Path | None = None) -> LAN:
        """Validate a parsed profile document (raises ``ProfileError``) and build it."""
        where = path if path is not None else "<dict>"
        doc = check_document(data, where, stem=path.stem if path is not None else None)
        controller = Controller(**doc["controller"]) if doc["controller"] else Controller()
        return cls(name=doc["name"], path=path, controller=controller,
                   devices=[_device(d) for d in doc["devices"]],
                   kinds=doc["kinds"], description=doc["description"], emulation=doc["emulation"],
                   secret_env=doc["secret_env"], groups=doc["groups"])


def resolve_profile_path(name_or_path: str, rootdir: Path) -> Path:
    """Find a profile: a ``.yaml``/``.yml`` path (relative to the working directory,
    then ``rootdir``), or a NAME in ``<rootdir>/network_profiles`` then the embedded ones."""
    text = str(name_or_path)
    if text.endswith(SUFFIXES):
        given = Path(text).expanduser()
        candidates = [given] if given.is_absolute() else [Path.cwd() / given, Path(rootdir) / given]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        looked = " and ".join(str(c) for c in dict.fromkeys(candidates))
        raise ProfileError(given, "", f"file not found (looked at {looked}); "
                                      f"create it with `collab lan init {given.stem}`")
    if not NAME_RE.match(text):
        raise ProfileError(text, "", "not a profile name (letters, digits, '.', '_', '-') "
                                     "nor a path ending in .yaml or .yml")
    candidates = [Path(rootdir) / PROFILE_DIR / f"{text}{suffix}" for suffix in SUFFIXES]
    candidates += [EMBEDDED_DIR / f"{text}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise ProfileError(candidates[0], "", f"no LAN profile named {text!r} (looked at {looked}); "
                                          f"create it with `collab lan init {text}`")


def load_profile(name_or_path: str, rootdir: Path) -> LAN:
    """Resolve, read and validate a profile; every problem is a ``ProfileError``."""
    path = resolve_profile_path(name_or_path, rootdir)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(path, "", f"can not read the file: {exc}") from None
    return LAN.from_dict(parse_yaml(text, path), path=path)


class _Dumper(yaml.SafeDumper):
    """Block style for the structure, flow style for short leaf lists and mappings.

    No anchors and aliases (``&id001``): profiles are edited by hand, and facts shared by
    the controller and a device must read as plain copies in both places.
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _is_leaf(value: Any) -> bool:
    items = value.values() if isinstance(value, dict) else value
    return all(isinstance(v, (str, int, float, bool, type(None))) for v in items)


def _represent_dict(dumper: _Dumper, data: dict) -> yaml.Node:
    flow = bool(data) and _is_leaf(data) and len(data) <= 4
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=flow)


def _represent_list(dumper: _Dumper, data: list) -> yaml.Node:
    flow = _is_leaf(data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)


class ReadOnlyProfile(CollabError):
    """A built-in profile (or a link to one): saving it would change every checkout's lab."""


def save_profile(lan: LAN, path: Path) -> Path:
    """Write ``lan`` to ``path`` atomically; ``load`` gives it back. Returns the file written.

    An existing file keeps its comments, key order, ``defaults`` and layout: only what
    changed is written (a round trip through ruamel.yaml), so a hand-written profile
    stays the one its author wrote. A symlink is never replaced: the file it points at
    is written, and a link into the built-in profiles is refused (``ReadOnlyProfile``).
    """
    link = Path(path)
    target = link.resolve() if link.is_symlink() else link
    if EMBEDDED_DIR.resolve() in target.resolve().parents:
        via = f" ({link} links to it)" if link.is_symlink() else ""
        raise ReadOnlyProfile(f"profile {lan.name!r} is built in and read-only: {target}{via}; "
                              "create your own with `collab lan init NAME`")
    if target.is_file():
        text = _round_trip(lan, target.read_text(encoding="utf-8"), target)
    else:
        text = (f"# LAN profile {lan.name!r} (schema: docs/profiles.md); written by pytest-collab\n"
                + yaml.dump(lan.to_dict(), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                            default_flow_style=False, width=100))
    _write_atomically(target, text)
    return target


def _round_trip(lan: LAN, original: str, path: Path) -> str:
    """``original`` with the changes between what it loads as and ``lan``, comments kept."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.util import load_yaml_guess_indent

    _, sequence, dash = load_yaml_guess_indent(original)  # "- name" or "  - name": as the author wrote
    sequence, dash = sequence or 2, dash or 0
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 100
    rt.indent(mapping=max(2, sequence - dash), sequence=sequence, offset=dash)
    doc = rt.load(original)
    before = LAN.from_dict(parse_yaml(original, path), path=path).to_dict()
    after = lan.to_dict()
    _apply(doc, {k: v for k, v in before.items() if k != "devices"},
           {k: v for k, v in after.items() if k != "devices"}, keep=("defaults",))
    _apply_devices(doc, before.get("devices", []), after.get("devices", []))
    out = io.StringIO()
    rt.dump(doc, out)
    return out.getvalue()


def _as_written(value: Any) -> Any:
    """``value`` ready for ruamel (YAML 1.2), read back the same by PyYAML (YAML 1.1):
    strings 1.1 would turn into something else (``yes``, ``on``, ``1_000``) are quoted."""
    from ruamel.yaml.scalarstring import SingleQuotedScalarString

    if isinstance(value, dict):
        return {k: _as_written(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_written(v) for v in value]
    if isinstance(value, str):
        try:
            same = yaml.safe_load(value) == value
        except yaml.YAMLError:
            same = False
        return value if same else SingleQuotedScalarString(value)
    return value


def _apply(doc: Any, old: dict[str, Any], new: dict[str, Any], keep: tuple[str, ...] = ()) -> None:
    """Write into the raw mapping ``doc`` only the keys whose loaded value changed."""
    for key, value in new.items():
        if old.get(key) == value:
            continue
        if isinstance(value, dict) and isinstance(old.get(key), dict) and isinstance(doc.get(key), dict):
            _apply(doc[key], old[key], value)
        else:
            doc[key] = _as_written(value)
    for key in old:
        if key not in new and key in doc and key not in keep:
            del doc[key]


def _apply_devices(doc: Any, old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    """Devices matched by name: changed ones edited in place, new ones appended, gone ones dropped."""
    raw = doc.get("devices")
    if raw is None:
        doc["devices"] = raw = []
    by_name = {str(d.get("name")): d for d in raw if isinstance(d, dict)}
    loaded = {str(d["name"]): d for d in old}
    wanted = {str(d["name"]) for d in new}
    for entry in list(raw):
        if isinstance(entry, dict) and str(entry.get("name")) not in wanted:
            raw.remove(entry)
    for device in new:
        name = str(device["name"])
        if name in by_name and name in loaded:
            _apply(by_name[name], loaded[name], device)
        else:
            raw.append(_as_written(device))


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a profile is a shared, secret-free file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
