"""The emulated lab never sends a packet off this machine: with the lab down, nothing connects.

A device of an emulated profile has an address on a bridge the lab creates. With the lab
down that address is on no network of this host, and the kernel would hand the SSH
handshake to the default gateway. Every INET connect is recorded here (and refused): none
may happen; the test errors with the fix instead.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import yaml

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
SUITE = """
import pytest

@pytest.mark.devices(rpi=1)
def test_on_the_lab(collab):
    collab.start("rpi", "prog.py").wait(timeout=30)

@pytest.mark.devices(server=1)
def test_again(collab):
    collab.start("server", "prog.py").wait(timeout=30)
"""


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every TCP/UDP connect of this process, refused (unix sockets, e.g. docker's, pass)."""
    attempts: list[object] = []
    real = socket.socket.connect
    real_ex = socket.socket.connect_ex

    def guarded(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise OSError(f"test: connect to {address} refused")
        return real(self, address)  # type: ignore[arg-type]

    def guarded_ex(self: socket.socket, address: object) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            return 111
        return real_ex(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_ex)
    return attempts


def _own_profile(path: Path, octet: int, kinds: tuple[str, ...] = ("server", "jetson", "rpi")) -> Path:
    """The shipped emulated profile under its own network and subnet, which no lab uses
    (one device per kind); the lab's keys and wheels stay in the user's real cache."""
    import pwd

    doc = yaml.safe_load((ROOT / "network_profiles" / "emulated.yaml").read_text())
    doc["name"] = path.stem
    home = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "pytest-collab" / "emulated"
    doc["emulation"].update(network=f"collab-test-{path.stem}-{os.getpid()}",
                            subnet=f"172.30.{octet}.0/24", home=str(home))
    doc["defaults"]["ssh"].update(key=str(home / "id_ed25519"), known_hosts=str(home / "known_hosts"))
    doc["devices"] = [next(d for d in doc["devices"] if d["kind"] == kind) for kind in kinds]
    for i, device in enumerate(doc["devices"]):
        device["address"] = f"172.30.{octet}.{10 + i}"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_emulated_lab_down_errors_at_once_and_connects_nowhere(pytester: pytest.Pytester,
                                                               connects: list[object]) -> None:
    profile = _own_profile(pytester.path / "emudown.yaml", 251)
    pytester.makepyfile(test_lab=SUITE, prog="print('hi')")
    result = pytester.runpytest(f"--lan={profile}", "--collab-out=out")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*LabError: emulated lab is not up: collab lab up emudown (*"])
    assert connects == [], f"connections attempted: {connects}"


def test_ssh_refuses_an_emulated_address_routed_through_a_gateway(connects: list[object]) -> None:
    from pytest_collab.errors import TransportError
    from pytest_collab.lan.profile import Device
    from pytest_collab.transport.routes import local_route
    from pytest_collab.transport.ssh import SSHTransport

    assert local_route("127.0.1.9") == "lo"
    assert local_route("172.30.251.10") is None         # no lab network: via the gateway
    device = Device.from_dict({"name": "rpi-1", "kind": "rpi", "address": "172.30.251.10",
                               "transport": "ssh", "ssh": {"user": "root", "connect_timeout": 1}})
    with pytest.raises(TransportError, match="not on a network of this host"):
        SSHTransport(device, local_only=True).open()
    assert connects == []


def test_lab_up_option_brings_the_lab_up_with_progress(pytester: pytest.Pytester, docker_client) -> None:
    """``--collab-lab-up``: instead of erroring, the session brings the lab up, saying so."""
    from pytest_collab.labs import down
    from pytest_collab.lan.profile import load_profile

    profile = _own_profile(pytester.path / "emuup.yaml", 252, kinds=("server", "rpi"))
    pytester.makepyfile(test_lab=SUITE, prog="print('hi')")
    try:
        result = pytester.runpytest(f"--lan={profile}", "--collab-out=out", "--collab-lab-up")
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines(["*collab lab up emuup: the lab is not up; bringing it up*",
                                     "*collab lab up emuup: [[]lab[]] *up at 172.30.252.1*"])
    finally:
        down(load_profile(str(profile), pytester.path), client=docker_client, progress=lambda line: None)
