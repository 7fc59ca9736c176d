"""Ansible's own fact code as the oracle for captured board files (a Raspberry Pi, a
Jetson, a two-socket server) that this machine is not: its CPU and distribution
collectors are run with their file reads pointed at the captured text."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


class _Module:
    """The little of AnsibleModule the collectors touch here."""

    def get_bin_path(self, *args: Any, **kwargs: Any) -> None:
        return None

    def run_command(self, *args: Any, **kwargs: Any) -> tuple[int, str, str]:
        return 1, "", ""


def ansible_cpu(monkeypatch: pytest.MonkeyPatch, cpuinfo: str, architecture: str) -> dict[str, Any]:
    from ansible.module_utils.facts.hardware import linux

    def lines(path: str, *args: Any, **kwargs: Any) -> list[str]:
        return cpuinfo.splitlines() if path == "/proc/cpuinfo" else []
    monkeypatch.setattr(linux, "get_file_lines", lines)
    hardware = linux.LinuxHardware(_Module())
    return hardware.get_cpu_facts(collected_facts={"ansible_architecture": architecture})


def ansible_distribution(monkeypatch: pytest.MonkeyPatch, root: Path) -> dict[str, Any]:
    """Distribution facts of a file tree ``root`` holding etc/os-release (and friends)."""
    from ansible.module_utils import distro
    from ansible.module_utils.facts import utils
    from ansible.module_utils.facts.system import distribution

    fake = distro.LinuxDistribution(include_lsb=False, include_uname=False, include_oslevel=False,
                                    root_dir=str(root))
    monkeypatch.setitem(distro.id.__globals__, "_distro", fake)

    def inside(path: str) -> str:
        return str(root / path.lstrip("/"))
    monkeypatch.setattr(distribution, "get_file_content",
                        lambda path, *a, **k: utils.get_file_content(inside(path), *a, **k))
    monkeypatch.setattr(distribution, "get_file_lines",
                        lambda path, *a, **k: utils.get_file_lines(inside(path), *a, **k))
    monkeypatch.setattr(distribution, "_file_exists",
                        lambda path, allow_empty=False: Path(inside(path)).is_file()
                        and (allow_empty or Path(inside(path)).stat().st_size > 0))
    return distribution.Distribution(_Module()).get_distribution_facts()
