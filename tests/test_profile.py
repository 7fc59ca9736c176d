"""LAN profiles: lookup, loading, exact validation messages, save/load round trip."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_collab.errors import CollabError, ProfileError
from pytest_collab.lan.profile import (EMBEDDED_DIR, LAN, Controller, Device, SSHConfig,
                                   load_profile, resolve_profile_path, save_profile)

REPO = Path(__file__).resolve().parent.parent

GOOD = """\
name: lab1
controller: {name: laptop, address: 192.168.1.10}
kinds:
  rpi: {resources: {cpus: 4, memory_mb: 4096}}
  jetson: {}
  server: {}
defaults: {transport: ssh, ssh: {user: pi, key: ~/.ssh/id_ed25519}}
devices:
  - {name: rpi-01, kind: rpi, address: 192.168.1.21}
  - {name: rpi-02, kind: rpi, address: 192.168.1.22}
  - {name: jetson-01, kind: jetson, address: 192.168.1.31}
  - {name: srv, kind: server, address: 192.168.1.40}
"""


def write(tmp_path: Path, text: str, name: str = "lab1.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error(tmp_path: Path, text: str) -> str:
    """Load a broken profile and return its message without the file prefix."""
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(str(path), tmp_path)
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path}: ")
    return str(info.value)[len(f"{path}: "):]


def broken(device_lines: str, extra: str = "") -> str:
    """GOOD with one more device appended (devices[4]) and optional top-level text."""
    return GOOD + "  - " + device_lines + "\n" + extra


# --- lookup ----------------------------------------------------------------------------

def test_name_is_found_in_rootdir_network_profiles_first(tmp_path: Path) -> None:
    (tmp_path / "network_profiles").mkdir()
    path = write(tmp_path / "network_profiles", GOOD, "local.yaml")
    assert resolve_profile_path("local", tmp_path) == path


def test_name_falls_back_to_the_embedded_profile(tmp_path: Path) -> None:
    assert resolve_profile_path("local", tmp_path) == EMBEDDED_DIR / "local.yaml"


def test_relative_yaml_path_is_found_under_rootdir(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert resolve_profile_path("lab1.yaml", tmp_path) == path


def test_unknown_name_names_every_place_looked_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as info:
        resolve_profile_path("lab9", tmp_path)
    first = tmp_path / "network_profiles" / "lab9.yaml"
    assert str(info.value) == (
        f"{first}: no LAN profile named 'lab9' (looked at {first}, "
        f"{tmp_path / 'network_profiles' / 'lab9.yml'}, {EMBEDDED_DIR / 'lab9.yaml'}); "
        "create it with `collab lan init lab9`")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ProfileError) as info:
        load_profile(str(path), tmp_path)
    assert str(info.value) == (f"{path}: file not found (looked at {path}); "
                               "create it with `collab lan init nope`")


def test_not_a_name_nor_a_yaml_path(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as info:
        resolve_profile_path("labs/lab1", tmp_path)
    assert str(info.value) == ("labs/lab1: not a profile name (letters, digits, '.', '_', '-') "
                               "nor a path ending in .yaml or .yml")


# --- the shipped profiles --------------------------------------------------------------

def test_embedded_local_profile() -> None:
    lan = load_profile("local", REPO)
    assert lan.name == "local"
    assert lan.controller == Controller("localhost", "127.0.0.1")
    assert [d.name for d in lan.devices] == [
        "server-1", "jetson-1", "jetson-2", "rpi-1", "rpi-2", "rpi-3", "rpi-4"]
    assert {(d.transport, d.runtime, d.address, d.arch) for d in lan.devices} == {
        ("local", "process", "127.0.0.1", None)}
    server = lan.device("server-1")
    assert (server.kind, server.tags) == ("server", ("gpu-less", "tail"))
    assert lan.device("rpi-3").resources == {"cpus": 4, "memory_mb": 4096}
    assert all(d.tags == ("edge",) for d in lan.devices[1:])


def test_network_profiles_local_is_a_relative_symlink_to_the_embedded_one() -> None:
    link = REPO / "network_profiles" / "local.yaml"
    assert link.is_symlink()
    assert not Path(link.readlink()).is_absolute()
    assert link.resolve() == (EMBEDDED_DIR / "local.yaml").resolve()


def test_example_lab_loads_and_merges_defaults() -> None:
    lan = load_profile("example-lab", REPO)
    assert lan.controller.name == "laptop"
    assert sorted(d.kind for d in lan.devices) == ["jetson", "rpi", "rpi", "server"]
    jetson = lan.device("jetson-01")
    assert jetson.ssh == SSHConfig(user="nvidia", key="~/.ssh/id_ed25519", connect_timeout=10)
    assert lan.device("gpu-server").ssh.port == 2222
    assert lan.device("rpi-02").runtime == "process"


# --- model -----------------------------------------------------------------------------

def test_name_defaults_to_file_stem_and_defaults_merge(tmp_path: Path) -> None:
    lan = load_profile(str(write(tmp_path, GOOD.replace("name: lab1\n", ""), "bench.yaml")), tmp_path)
    assert lan.name == "bench"
    rpi = lan.device("rpi-01")
    assert rpi.transport == "ssh"
    assert rpi.ssh == SSHConfig(user="pi", key="~/.ssh/id_ed25519")
    assert rpi.resources == {"cpus": 4, "memory_mb": 4096}


def test_matches_kind_or_tag() -> None:
    device = Device(name="j", kind="jetson", tags=("edge", "gpu"))
    assert device.matches("jetson") and device.matches("gpu")
    assert not device.matches("rpi")


def test_unknown_device_lists_names() -> None:
    lan = LAN(name="mini", path=None, controller=Controller(),
              devices=[Device("a", "rpi"), Device("b", "rpi")])
    with pytest.raises(CollabError) as info:
        lan.device("c")
    assert str(info.value) == "profile 'mini' has no device 'c'; its devices: a, b"


def test_save_load_round_trip(tmp_path: Path) -> None:
    lan = load_profile(str(write(tmp_path, GOOD)), tmp_path)
    lan.devices[0].facts = {"ansible_architecture": "aarch64", "ansible_memtotal_mb": 3794}
    lan.devices[0].facts_time = "2024-05-01T10:00:00+00:00"
    lan.devices[0].mac = "00:11:22:33:44:55"
    lan.devices[1].ssh = SSHConfig(user="pi", port=2200, host_key_policy="tofu", agent=False)
    lan.description = "bench"
    out = tmp_path / "out" / "saved.yaml"
    save_profile(lan, out)
    again = load_profile(str(out), tmp_path)
    assert again == lan
    text = out.read_text()
    assert text.index("name:") < text.index("controller:") < text.index("devices:")
    assert "- name: rpi-01\n  kind: rpi\n  address: 192.168.1.21\n" in text


def test_embedded_profile_round_trips(tmp_path: Path) -> None:
    lan = load_profile("local", REPO)
    save_profile(lan, tmp_path / "copy.yaml")
    assert load_profile(str(tmp_path / "copy.yaml"), tmp_path) == lan


def test_device_from_dict_validates() -> None:
    assert Device.from_dict({"name": "x", "kind": "rpi", "tags": ["a"]}) == Device("x", "rpi", tags=("a",))
    with pytest.raises(ProfileError) as info:
        Device.from_dict({"name": "x"})
    assert str(info.value) == "<dict>: device: missing required key 'kind'"


# --- validation messages ---------------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    ("devices: [\n  {name: a\n", "invalid YAML at line 3, column 1: expected ',' or '}', but got '<stream end>'"),
    ("devices:\n  - name: a\n    name: b\n",
     "invalid YAML at line 3, column 5: duplicate key 'name' (first at line 2)"),
    ("", "the file is empty; a profile needs at least 'devices:'"),
    ("- a\n- b\n", "the top level must be a mapping (name:, controller:, devices:), got list"),
    ("name: x\n", "missing required key 'devices'"),
    ("devices: []\n", "devices: the list is empty; a profile needs at least one device"),
    ("devices: {a: 1}\n", "devices: expected a list of devices, got {'a': 1} (dict)"),
    ("devise: []\n", "devise: unknown key; did you mean 'devices'?"),
    ("name: lab 1\ndevices: [{name: a, kind: rpi}]\n",
     "name: 'lab 1' is not a valid name; use letters, digits, '.', '_' and '-'"),
    ("controller: {name: c}\ndevices: [{name: a, kind: rpi}]\n",
     "controller: missing required key 'address'"),
    ("kinds: {rpi: {cpus: 4}}\ndevices: [{name: a, kind: rpi}]\n",
     "kinds.rpi.cpus: unknown key; allowed keys: description, resources"),
    ("defaults: {name: x}\ndevices: [{name: a, kind: rpi}]\n",
     "defaults.name: unknown key; allowed keys: arch, os, python, resources, runtime, ssh, "
     "tags, transport, workdir"),
    ("defaults: {ssh: {port: 0}}\ndevices: [{name: a, kind: rpi}]\n",
     "defaults.ssh.port: expected an integer from 1 to 65535, got 0"),
])
def test_document_errors(tmp_path: Path, text: str, message: str) -> None:
    assert error(tmp_path, text) == message


@pytest.mark.parametrize(("device", "message"), [
    ("{name: x}", "devices[4]: missing required key 'kind'"),
    ("{kind: rpi}", "devices[4]: missing required key 'name'"),
    ("just-a-name", "devices[4]: expected a mapping (name:, kind:, address:, ...), "
                    "got 'just-a-name' (str)"),
    ("{name: x, kind: rpi, address: 42}", "devices[4].address: expected a string, got 42 (int)"),
    ("{name: x, kind: rpi, adress: 10.0.0.1}", "devices[4].adress: unknown key; did you mean 'address'?"),
    ("{name: x, kind: rbi, address: a}", "devices[4].kind: unknown kind 'rbi'; "
                                         "declared kinds: jetson, rpi, server"),
    ("{name: rpi-01, kind: rpi, address: a}",
     "devices[4].name: duplicate device name 'rpi-01' (first at devices[0])"),
    ("{name: x, kind: rpi, address: a, transport: sssh}",
     "devices[4].transport: expected one of local, ssh; got 'sssh' (str)"),
    ("{name: x, kind: rpi, address: a, runtime: podman}",
     "devices[4].runtime: expected one of process, docker; got 'podman' (str)"),
    ("{name: x, kind: rpi, address: a, ssh: {host_key_policy: accept}}",
     "devices[4].ssh.host_key_policy: expected one of reject, tofu; got 'accept' (str)"),
    ("{name: x, kind: rpi, address: a, ssh: {port: 70000}}",
     "devices[4].ssh.port: expected an integer from 1 to 65535, got 70000"),
    ("{name: x, kind: rpi, address: a, ssh: {port: '22'}}",
     "devices[4].ssh.port: expected an integer, got '22' (str)"),
    ("{name: x, kind: rpi, address: a, ssh: {agent: 1}}",
     "devices[4].ssh.agent: expected true or false, got 1 (int)"),
    ("{name: x, kind: rpi, address: a, ssh: {connect_timeout: 0}}",
     "devices[4].ssh.connect_timeout: expected a number greater than 0, got 0"),
    ("{name: x, kind: rpi, address: a, ssh: {key_env: 1BAD}}",
     "devices[4].ssh.key_env: '1BAD' is not an environment variable name"),
    ("{name: x, kind: rpi, address: a, resources: {cpus: -1}}",
     "devices[4].resources.cpus: expected a number of 0 or more, got -1"),
    ("{name: x, kind: rpi, address: a, resources: {cpus: four}}",
     "devices[4].resources.cpus: expected a number, got 'four' (str)"),
    ("{name: x, kind: rpi, address: a, tags: edge}",
     "devices[4].tags: expected a list of names, got 'edge' (str)"),
    ("{name: x, kind: rpi, address: a, tags: [edge, 'rpi#2']}",
     "devices[4].tags[1]: 'rpi#2' is not a valid name; use letters, digits, '.', '_' and '-'"),
    ("{name: x, kind: rpi, address: a, mac: 12:34:56}",
     "devices[4].mac: expected a string, got 45296 (int); quote MAC addresses: "
     'mac: "00:11:22:33:44:55"'),
    ("{name: x, kind: rpi, address: a, mac: 'dc:a6'}",
     "devices[4].mac: 'dc:a6' is not a MAC address like \"dc:a6:32:01:02:03\""),
    ("{name: x, kind: rpi, transport: ssh}",
     "devices[4]: missing required key 'address' (transport is 'ssh')"),
    ("{name: x, kind: rpi, address: a, facts: [1]}",
     "devices[4].facts: expected a mapping, got [1] (list)"),
])
def test_device_errors(tmp_path: Path, device: str, message: str) -> None:
    assert error(tmp_path, broken(device)) == message


SECRET = ("profiles hold no secrets; give the path of a key file with 'key:' or the name "
          "of an environment variable holding that path with 'key_env:'")


@pytest.mark.parametrize(("text", "key"), [
    (broken("{name: x, kind: rpi, address: a, ssh: {password: hunter2}}"), "devices[4].ssh.password"),
    (broken("{name: x, kind: rpi, address: a, key_text: abc}"), "devices[4].key_text"),
    (GOOD.replace("defaults: {", "defaults: {private_key: abc, "), "defaults.private_key"),
    (broken("{name: x, kind: rpi, address: a, facts: {vault: {Password: x}}}"),
     "devices[4].facts.vault.Password"),
])
def test_secrets_are_refused_anywhere(tmp_path: Path, text: str, key: str) -> None:
    assert error(tmp_path, text) == f"{key}: {SECRET}"


def test_key_text_in_key_is_refused(tmp_path: Path) -> None:
    text = broken('{name: x, kind: rpi, address: a, ssh: {key: "-----BEGIN OPENSSH PRIVATE KEY-----"}}')
    assert error(tmp_path, text) == ("devices[4].ssh.key: looks like private key text; 'key:' "
                                     "takes the path of a key file (profiles hold no secrets)")


def test_error_carries_path_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, broken("{name: x, kind: rbi}"))
    with pytest.raises(ProfileError) as info:
        load_profile(str(path), tmp_path)
    assert (info.value.path, info.value.key) == (str(path), "devices[4].kind")


def test_saved_profile_has_no_yaml_aliases(tmp_path: Path) -> None:
    """Facts shared by the controller and a device are written out twice, never as &id001."""
    facts = {"ansible_architecture": "x86_64", "ansible_memtotal_mb": 1024}
    lan = LAN(name="lab", path=None, controller=Controller("vm", "127.0.0.1", facts),
              devices=[Device(name="vm", kind="controller", facts=facts)])
    save_profile(lan, tmp_path / "lab.yaml")
    text = (tmp_path / "lab.yaml").read_text()
    assert "&" not in text and "*id" not in text
    assert text.count("ansible_memtotal_mb: 1024") == 2
    assert load_profile(str(tmp_path / "lab.yaml"), tmp_path) == lan
