"""Saving a profile keeps what its author wrote (comments, defaults, layout) and never
replaces a symlink; the built-in profiles stay read-only, even through a link."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_collab.lan.profile import EMBEDDED_DIR, Device, ReadOnlyProfile, load_profile, save_profile

HAND_WRITTEN = """\
# Our lab on the second floor: ask Ana before re-cabling.
name: floor2
description: two Pis and a server   # the server is the old desktop
defaults: {transport: local}
devices:
  # the Pis sit on the shelf, left to right
  - name: rpi-1
    kind: rpi
    tags: [edge]        # camera attached
  - name: server-1
    kind: server
"""


def test_saving_keeps_comments_defaults_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "floor2.yaml"
    path.write_text(HAND_WRITTEN)
    lan = load_profile(str(path), tmp_path)
    lan.device("rpi-1").facts = {"cpu_count": 4}
    lan.device("rpi-1").facts_time = "2026-01-01T00:00:00+00:00"
    lan.devices.append(Device(name="rpi-2", kind="rpi", transport="local"))
    save_profile(lan, path)
    text = path.read_text()
    for comment in ("# Our lab on the second floor: ask Ana before re-cabling.",
                    "# the server is the old desktop", "# the Pis sit on the shelf, left to right",
                    "# camera attached"):
        assert comment in text, text
    assert "defaults: {transport: local}" in text
    assert "\n  - name: rpi-1\n    kind: rpi\n" in text  # the author's indentation
    assert text.index("name: floor2") < text.index("description:") < text.index("devices:")
    server_block = text[text.index("- name: server-1"):text.index("- name: rpi-2")]
    assert "transport" not in server_block  # the default stays a default, not copied into devices
    again = load_profile(str(path), tmp_path)
    assert again == lan
    assert again.device("rpi-1").facts == {"cpu_count": 4}


def test_a_symlinked_profile_is_written_through_never_replaced(tmp_path: Path) -> None:
    real = tmp_path / "shared" / "floor2.yaml"
    real.parent.mkdir()
    real.write_text(HAND_WRITTEN)
    link = tmp_path / "network_profiles" / "floor2.yaml"
    link.parent.mkdir()
    link.symlink_to(real)
    lan = load_profile("floor2", tmp_path)
    lan.description = "changed"
    assert save_profile(lan, link) == real
    assert link.is_symlink() and "description: changed" in real.read_text()


def test_built_in_profile_behind_a_symlink_is_read_only(tmp_path: Path) -> None:
    link = tmp_path / "network_profiles" / "local.yaml"
    link.parent.mkdir()
    link.symlink_to(EMBEDDED_DIR / "local.yaml")
    before = (EMBEDDED_DIR / "local.yaml").read_bytes()
    lan = load_profile("local", tmp_path)
    with pytest.raises(ReadOnlyProfile, match=r"built in and read-only.*links to it"):
        save_profile(lan, link)
    done = subprocess.run([sys.executable, "-m", "pytest_collab", "facts", "local", "--export", "json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "facts not saved" in done.stderr and "read-only" in done.stderr
    assert link.is_symlink() and (EMBEDDED_DIR / "local.yaml").read_bytes() == before


def test_strings_that_yaml_1_1_reads_otherwise_survive_a_save(tmp_path: Path) -> None:
    """ruamel writes YAML 1.2; profiles are read as 1.1: 'yes', 'on', '010' stay strings."""
    path = tmp_path / "floor2.yaml"
    path.write_text(HAND_WRITTEN)
    lan = load_profile(str(path), tmp_path)
    lan.device("rpi-1").facts = {"camera": "yes", "led": "on", "serial": "010", "plain": "text"}
    lan.devices.append(Device(name="rpi-2", kind="rpi", transport="local", facts={"wifi": "no"}))
    save_profile(lan, path)
    again = load_profile(str(path), tmp_path)
    assert again.device("rpi-1").facts == {"camera": "yes", "led": "on", "serial": "010", "plain": "text"}
    assert again.device("rpi-2").facts == {"wifi": "no"}
