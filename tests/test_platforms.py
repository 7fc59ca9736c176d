"""One home for architecture names and docker archives."""
from __future__ import annotations

import io
import tarfile

from pytest_collab.containers.platforms import ARCHES, PLATFORMS, debian_arch, kernel_arch, wheel_platforms
from pytest_collab.containers.tarball import tar_bytes


def test_arch_names_round_trip() -> None:
    for machine, debian in {"x86_64": "amd64", "aarch64": "arm64", "AARCH64": "arm64", "armv7l": "armhf",
                            "riscv64": "riscv64"}.items():
        assert debian_arch(machine) == debian
    assert kernel_arch("jetson") == "aarch64" and kernel_arch("amd64") == "x86_64"
    assert set(PLATFORMS) == set(ARCHES)
    assert wheel_platforms("jetson") == ("manylinux2014_aarch64", "manylinux_2_28_aarch64")


def test_tar_bytes_is_reproducible_and_keeps_modes() -> None:
    files = {"b/run.sh": (b"#!/bin/sh\n", 0o755), "/a.txt": (b"x", 0o644)}
    first = tar_bytes(files)
    assert first == tar_bytes(dict(reversed(list(files.items()))))
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = {m.name: (m.mode, m.mtime) for m in tar.getmembers()}
    assert members == {"a.txt": (0o644, 0), "b/run.sh": (0o755, 0)}
