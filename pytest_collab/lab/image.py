"""The emulated devices' image: the base layer + sshd, tc, iptables, grpcio and shipped wheels.

Built once and tagged by the content hash of its inputs (images.LayerSpec), so a lab
that comes up again builds nothing. Python packages Debian lacks (blosc2) come as wheels
``pip download``-ed on the controller (cached under the lab's folder), because pip inside
a build can not always reach an index; torch (CPU) is optional, for split_resnet.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from pytest_collab.images import IMAGES_DIR, LayerSpec, base_spec, build_layer, resolve_base_from
from pytest_collab.lab.shaping import ShapingError

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]
REPOSITORY = "collab/emulated-device"


def download_wheels(packages: Sequence[str], cache: Path, progress: Progress) -> Path | None:
    """Wheels of ``packages`` (and their dependencies) for bookworm's cp311, downloaded once."""
    if not packages:
        return None
    key = hashlib.sha256("\n".join(sorted(packages)).encode()).hexdigest()[:12]
    dest = cache / "wheels" / key
    if (dest / ".complete").is_file():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    progress(f"[emulated] pip download {' '.join(packages)} -> {dest}")
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--only-binary", ":all:",
                           "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64",
                           "--python-version", "311", "-d", str(dest), *packages],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise ShapingError(f"emulated lab: pip download of {', '.join(packages)} failed; the "
                           f"controller needs PyPI once (then {dest} is reused), or drop them "
                           f"from the profile's emulation.packages:\n{proc.stderr[-1500:]}")
    (dest / ".complete").write_text("ok\n")
    return dest


def device_spec(parent: str, wheels: Path | None, dockerfiles: Path = IMAGES_DIR) -> LayerSpec:
    folder = dockerfiles / "emulated"
    files = {"Dockerfile": (folder / "Dockerfile").read_bytes(),
             "sshd_config": (folder / "sshd_config").read_bytes()}
    found = sorted(wheels.glob("*.whl")) if wheels else []
    files.update({f"wheels/{p.name}": p.read_bytes() for p in found} or {"wheels/.keep": b""})
    return LayerSpec("emulated", "amd64", REPOSITORY, files, {"PARENT": parent})


def device_image(client: "docker.DockerClient", *, packages: Sequence[str] = (),
                 torch_wheel: Path | None = None, cache: Path, progress: Progress = print) -> str:
    """Build (or find) the device image; returns its content-hash tag."""
    base_from = resolve_base_from(client, "amd64", "auto", progress)
    base = build_layer(client, base_spec("amd64", base_from=base_from), progress=progress)
    # The torch wheel goes through pip download too, which fetches its dependencies.
    wanted = [*packages, *([str(Path(torch_wheel).expanduser())] if torch_wheel else [])]
    wheels = download_wheels(wanted, cache, progress)
    return build_layer(client, device_spec(base.tag, wheels), progress=progress).tag
