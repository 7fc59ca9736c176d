"""The apt mirror comes from this machine's sources, in both apt formats."""
from __future__ import annotations

from pathlib import Path

from pytest_collab.containers.bootstrap import DEFAULT_MIRROR, apt_mirror, tarball_key


def test_mirror_from_deb822(tmp_path: Path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.lab/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.lab/debian/\nSuites: bookworm bookworm-updates\n")
    assert apt_mirror("bookworm", tmp_path) == "http://mirror.lab/debian"


def test_mirror_from_one_line_format_and_fallback(tmp_path: Path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# deb http://old/debian bookworm main\n"
        "deb [signed-by=/k.gpg] http://snap.lab/debian bookworm main\n")
    assert apt_mirror("bookworm", tmp_path) == "http://snap.lab/debian"
    assert apt_mirror("trixie", tmp_path) == DEFAULT_MIRROR


def test_key_changes_with_inputs():
    base = tarball_key("amd64", "bookworm", "http://m", ("python3",))
    assert base == tarball_key("amd64", "bookworm", "http://m", ("python3",))
    assert base != tarball_key("arm64", "bookworm", "http://m", ("python3",))
    assert base != tarball_key("amd64", "bookworm", "http://m", ("python3", "curl"))
