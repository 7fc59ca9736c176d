"""The emulated devices' image: the base layer + sshd, tc, iptables, grpcio and shipped wheels,
and on top of it, only when a lab asks for it, a torch (CPU) layer for split_resnet.

Every layer is tagged by the content hash of its inputs (images.LayerSpec), so a lab that
comes up again builds nothing, and labs without torch never pay for it. Python packages
Debian lacks (blosc2, torch's dependencies) come as wheels ``pip download``-ed on the
controller (cached under the lab's folder), because pip inside a build can not always reach
an index.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.server
import json
import re
import shutil
import threading
import urllib.parse
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from pytest_collab.containers.images import IMAGES_DIR, LayerSpec, base_spec, build_layer, resolve_base_from
from pytest_collab.containers.wheels import WheelDownloadError
from pytest_collab.containers.wheels import download_wheels as download
from pytest_collab.labs.shaping import ShapingError

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]
REPOSITORY = "collab/emulated-device"
TORCH_REPOSITORY = "collab/emulated-device-torch"


def download_wheels(packages: Sequence[str], cache: Path, progress: Progress) -> Path | None:
    """Wheels of ``packages`` (and their dependencies) for bookworm's cp311, downloaded once."""
    if not packages:
        return None
    key = hashlib.sha256("\n".join(sorted(packages)).encode()).hexdigest()[:12]
    dest = cache / "wheels" / key
    if (dest / ".complete").is_file():
        return dest
    try:
        download(list(packages), dest, arch="amd64", python_version="311",
                 progress=lambda line: progress(f"[emulated] {line}"))
    except WheelDownloadError as exc:
        raise ShapingError(f"emulated lab: pip download of {', '.join(packages)} failed; the "
                           f"controller needs PyPI once (then {dest} is reused), or drop them "
                           f"from the profile's emulation.packages:\n{exc.stderr[-1500:]}") from None
    (dest / ".complete").write_text("ok\n")
    return dest


def device_spec(parent: str, wheels: Path | None, dockerfiles: Path = IMAGES_DIR) -> LayerSpec:
    folder = dockerfiles / "emulated"
    files = {"Dockerfile": (folder / "Dockerfile").read_bytes(),
             "sshd_config": (folder / "sshd_config").read_bytes()}
    found = sorted(wheels.glob("*.whl")) if wheels else []
    files.update({f"wheels/{p.name}": p.read_bytes() for p in found} or {"wheels/.keep": b""})
    return LayerSpec("emulated", "amd64", REPOSITORY, files, {"PARENT": parent})


# ---------------------------------------------------------------------------- torch layer
@dataclasses.dataclass(frozen=True)
class ServedLayerSpec(LayerSpec):
    """A layer whose wheels arrive over loopback HTTP during the build.

    The URL (its port changes per build) is not an input: the pinned hashes in
    ``requirements.txt`` are, so the tag still names exactly what gets installed.
    """

    @property
    def digest(self) -> str:
        args = {k: v for k, v in self.buildargs.items() if k != "WHEELS_URL"}
        return dataclasses.replace(LayerSpec(self.layer, self.arch, self.repository, self.files),
                                   buildargs=args, executable=self.executable).digest


def sha256_of(path: Path, cache: Path) -> str:
    """A file's sha256, remembered by (size, mtime) so a 190 MB wheel is hashed once, not per ``up``."""
    index = cache / "sha256.json"
    known = json.loads(index.read_text()) if index.is_file() else {}
    st = path.stat()
    stamp = [st.st_size, st.st_mtime_ns]
    entry = known.get(str(path))
    if entry and entry[:2] == stamp:
        return str(entry[2])
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    known[str(path)] = [*stamp, h.hexdigest()]
    cache.mkdir(parents=True, exist_ok=True)
    index.write_text(json.dumps(known, indent=1))
    return h.hexdigest()


def wheel_requirements(wheel: Path) -> list[str]:
    """A wheel's own ``Requires-Dist`` lines, extras left out (what ``pip install`` would pull)."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    reqs = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]
    return [r for r in reqs if "extra ==" not in r]


def _pin(wheel: Path, cache: Path) -> str:
    name, version = wheel.name.split("-")[:2]
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version} --hash=sha256:{sha256_of(wheel, cache)}"


def torch_wheels(torch_wheel: Path, cache: Path, progress: Progress) -> list[Path]:
    """The torch wheel and its dependencies' wheels (downloaded once, beside the lab's cache)."""
    if not torch_wheel.is_file():
        raise ShapingError(f"emulated lab: torch wheel {torch_wheel} does not exist; set the profile's "
                           "emulation.torch_wheel (or $PYTEST_COLLAB_TORCH_WHEEL) to a CPU cp311 "
                           "manylinux wheel, e.g. /opt/wheels/torch-2.13.0+cpu-cp311-...whl")
    deps = download_wheels(wheel_requirements(torch_wheel), cache, progress)
    return [torch_wheel, *(sorted(deps.glob("*.whl")) if deps else [])]


def torch_spec(parent: str, wheels: Sequence[Path], cache: Path, url: str = "",
               dockerfiles: Path = IMAGES_DIR) -> ServedLayerSpec:
    requirements = "".join(f"{_pin(w, cache)}\n" for w in wheels)
    files = {"Dockerfile": (dockerfiles / "emulated" / "torch" / "Dockerfile").read_bytes(),
             "requirements.txt": requirements.encode()}
    return ServedLayerSpec("emulated-torch", "amd64", TORCH_REPOSITORY, files,
                           {"PARENT": parent, "WHEELS_URL": url})


@contextlib.contextmanager
def serve_wheels(wheels: Sequence[Path]) -> Iterator[str]:
    """An HTTP listing of ``wheels`` on 127.0.0.1 (pip's ``--find-links``) while the build runs."""
    by_name = {w.name: w for w in wheels}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            name = urllib.parse.unquote(self.path.strip("/"))
            if not name:
                body = "".join(f'<a href="{urllib.parse.quote(n)}">{n}</a>\n' for n in sorted(by_name))
                self._head(len(body.encode()), "text/html")
                self.wfile.write(body.encode())
            elif name in by_name:
                with by_name[name].open("rb") as f:
                    self._head(by_name[name].stat().st_size, "application/octet-stream")
                    shutil.copyfileobj(f, self.wfile, 1 << 20)
            else:
                self.send_error(404)

        def _head(self, size: int, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(size))
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="collab-wheels", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def device_image(client: "docker.DockerClient", *, packages: Sequence[str] = (),
                 torch_wheel: Path | None = None, cache: Path, progress: Progress = print) -> str:
    """Build (or find) the device image, with the torch layer when ``torch_wheel``; its tag."""
    base_from = resolve_base_from(client, "amd64", "auto", progress)
    base = build_layer(client, base_spec("amd64", base_from=base_from), progress=progress)
    wheels = download_wheels(packages, cache, progress)
    device = build_layer(client, device_spec(base.tag, wheels), progress=progress).tag
    if torch_wheel is None:
        return device
    served = torch_wheels(Path(torch_wheel).expanduser(), cache, progress)
    with serve_wheels(served) as url:
        return build_layer(client, torch_spec(device, served, cache / "wheels", url), progress=progress).tag
