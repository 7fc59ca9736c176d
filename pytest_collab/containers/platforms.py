"""Architecture names, in one place: what a kernel, Debian, Docker, qemu and pip call them.

A device's ``uname -m`` says ``aarch64``, Debian and Docker say ``arm64``, pip's wheel tags
say ``manylinux2014_aarch64``; the image layers are keyed by our own arch names (``amd64``,
``arm64``, ``jetson``). Every translation goes through this table.
"""
from __future__ import annotations

import platform

#: Image architectures this project builds base layers for.
ARCHES = ("amd64", "arm64", "jetson")
#: Docker platform of each image architecture.
PLATFORMS = {"amd64": "linux/amd64", "arm64": "linux/arm64", "jetson": "linux/arm64"}
#: ``uname -m`` (or Docker's ``Architecture``) -> Debian/Docker name.
_DEBIAN = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "armhf"}
#: Debian name -> kernel/qemu name.
_KERNEL = {"amd64": "x86_64", "arm64": "aarch64", "jetson": "aarch64", "armhf": "armv7l"}


def debian_arch(machine: str) -> str:
    """``x86_64`` -> ``amd64``, ``aarch64`` -> ``arm64``; unknown names pass through."""
    machine = machine.lower()
    return _DEBIAN.get(machine, machine)


def kernel_arch(arch: str) -> str:
    """``amd64`` -> ``x86_64``, ``arm64``/``jetson`` -> ``aarch64`` (qemu's and pip's names)."""
    return _KERNEL.get(arch, arch)


def host_arch() -> str:
    """This machine's architecture in Debian's names."""
    return debian_arch(platform.machine())


def wheel_platforms(arch: str) -> tuple[str, ...]:
    """pip ``--platform`` tags for binary wheels that run on ``arch`` (newest glibc tag last)."""
    machine = kernel_arch(arch)
    return (f"manylinux2014_{machine}", f"manylinux_2_28_{machine}")
