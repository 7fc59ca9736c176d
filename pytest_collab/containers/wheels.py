"""Binary wheels downloaded on the controller for a device's platform (offline labs).

Devices of an offline lab cannot reach PyPI; the controller downloads the wheels for the
device's architecture and Python once, and the image layer installs them with ``--no-index``.
"""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pytest_collab.containers.platforms import wheel_platforms

Progress = Callable[[str], None]


class WheelDownloadError(Exception):
    """pip could not download a wheel for the platform; ``stderr`` holds pip's reason."""

    def __init__(self, platform: str, stderr: str) -> None:
        super().__init__(f"pip download for {platform} failed:\n{stderr[-2000:]}")
        self.stderr = stderr


def download_wheels(requirements: Sequence[str], dest: Path, *, arch: str = "amd64",
                    python_version: str = "311", progress: Progress = print) -> list[Path]:
    """Wheels of ``requirements`` (pip arguments: names or ``-r FILE``) and their dependencies."""
    platforms = wheel_platforms(arch)
    dest.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "download", "--only-binary", ":all:",
            *[x for p in platforms for x in ("--platform", p)], "--python-version", python_version,
            "-d", str(dest), *requirements]
    progress(f"pip download for {platforms[0]} cp{python_version} -> {dest}")
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise WheelDownloadError(platforms[0], proc.stderr)
    return sorted(dest.glob("*.whl"))
