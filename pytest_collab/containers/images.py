"""Layered experiment images: base (per arch) -> deps (requirements) -> runtime (code + wrapper).

Each layer's tag is a hash of its inputs (Dockerfile, context files, build args) and its
parent's tag, so an unchanged experiment rebuilds nothing (the tag is already in the
engine) and a code change rebuilds only the runtime layer. Builds go through the docker
SDK and stream as progress lines: ``[deps] step 3/7: RUN ...``, ``[deps] step 3/7 cache hit``.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from pytest_collab.containers import platforms
from pytest_collab.containers.platforms import ARCHES, PLATFORMS
from pytest_collab.containers.tarball import tar_bytes
from pytest_collab.errors import CollabError
from pytest_collab.testcase import REQUIREMENTS_FILE, WHEELS_DIR, is_code

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]

#: The Dockerfiles, shipped as package data (``dockerfiles/<layer>/Dockerfile``, base per arch).
IMAGES_DIR = Path(__file__).resolve().parent / "dockerfiles"
#: Context paths that help a build run but do not change what it produces (TLS roots).
UNHASHED_PREFIXES = ("certs/",)
#: Files of a test case folder that never go into an image.
#: beside what is never code (pytest_collab.testcase.is_code): wheels go into the deps layer
_NOT_RUNTIME = frozenset({WHEELS_DIR})
HOST_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


class ImageError(CollabError):
    """A layer could not be specified or built; the message names the layer and the step."""


@dataclass(frozen=True)
class LayerSpec:
    """Everything one ``docker build`` of a layer needs; its tag follows from it alone."""

    layer: str                        # "base" | "deps" | "runtime"
    arch: str
    repository: str                   # e.g. "collab/runtime-split_resnet"
    files: dict[str, bytes]           # context path -> content (the Dockerfile included)
    buildargs: dict[str, str] = field(default_factory=dict)
    executable: frozenset[str] = frozenset()   # context paths that keep their exec bit

    @property
    def digest(self) -> str:
        """Content hash of the layer's inputs (parent tag is one of the build args)."""
        h = hashlib.sha256(f"{self.layer}\0{self.arch}\0".encode())
        for key in sorted(self.buildargs):
            h.update(f"arg {key}={self.buildargs[key]}\0".encode())
        for path in sorted(self.files):
            if path.startswith(UNHASHED_PREFIXES):
                continue
            mode = "x" if path in self.executable else "-"
            h.update(f"file {path} {mode} ".encode() + hashlib.sha256(self.files[path]).digest())
        return h.hexdigest()[:16]

    @property
    def tag(self) -> str:
        return f"{self.repository}:{self.arch}-{self.digest}"

    def context(self) -> io.BytesIO:
        """The build context as an uncompressed tar (fixed mtimes: docker's cache keys on them)."""
        return io.BytesIO(tar_bytes({path: (data, 0o755 if path in self.executable else 0o644)
                                     for path, data in self.files.items()}))


@dataclass
class BuildResult:
    """What building one layer did: ``built`` False means the tag was already there."""

    layer: str
    tag: str
    image_id: str
    built: bool
    steps: int = 0
    cached_steps: int = 0
    seconds: float = 0.0


def repo_name(text: str) -> str:
    """A valid repository path component from a folder name (lowercase, [a-z0-9._-])."""
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return name or "experiment"


def _check_arch(arch: str) -> None:
    if arch not in ARCHES:
        raise ImageError(f"unknown arch {arch!r}; use one of {', '.join(ARCHES)} "
                         f"(Dockerfiles under {IMAGES_DIR / 'base'})")


def _dockerfile(*parts: str, dockerfiles: Path) -> bytes:
    path = dockerfiles.joinpath(*parts, "Dockerfile")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: missing Dockerfile ({exc.strerror}); pass dockerfiles= "
                         "the folder holding <layer>/Dockerfile") from exc


def _tree(root: Path, prefix: str, skip: frozenset[str] = _NOT_RUNTIME) -> tuple[dict[str, bytes], set[str]]:
    """Files under ``root`` as ``prefix/relpath`` -> bytes, and the executable ones."""
    files: dict[str, bytes] = {}
    executable: set[str] = set()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(p in skip for p in rel.parts) or not is_code(rel.parts):
            continue
        if path.is_file():
            key = f"{prefix}/{rel.as_posix()}"
            files[key] = path.read_bytes()
            if os.access(path, os.X_OK):
                executable.add(key)
    return files, executable


def _wheels(wheels_dir: Path | None, extra: Iterable[Path] = ()) -> dict[str, bytes]:
    """``wheels/*.whl`` for the context; a placeholder keeps ``COPY wheels/`` valid when empty."""
    found = sorted(wheels_dir.glob("*.whl")) if wheels_dir and wheels_dir.is_dir() else []
    files = {f"wheels/{p.name}": p.read_bytes() for p in [*found, *extra]}
    return files or {"wheels/.keep": b""}


def base_spec(arch: str, *, base_from: str | None = None, torch_wheel: Path | None = None,
              wheels_dir: Path | None = None, dockerfiles: Path = IMAGES_DIR) -> LayerSpec:
    """The per-arch base: python3, numpy, pip (+ torch when its wheel is given)."""
    _check_arch(arch)
    files = {"Dockerfile": _dockerfile("base", arch, dockerfiles=dockerfiles),
             **_wheels(wheels_dir, [torch_wheel] if torch_wheel else [])}
    args = {"BASE_FROM": base_from} if base_from else {}
    return LayerSpec("base", arch, "collab/base", files, args)


def _ca_bundle() -> bytes:
    for name in (os.environ.get("PIP_CERT"), os.environ.get("REQUESTS_CA_BUNDLE"), *HOST_CA_BUNDLES):
        if name and Path(name).is_file():
            return Path(name).read_bytes()
    return b""


def deps_spec(testcase_dir: Path, parent: str, arch: str, *, wheels_dir: Path | None = None,
              dockerfiles: Path = IMAGES_DIR) -> LayerSpec:
    """The experiment's ``requirements.txt``: from shipped wheels (offline) or from PyPI."""
    testcase_dir = Path(testcase_dir)
    req = testcase_dir / REQUIREMENTS_FILE
    files = {"Dockerfile": _dockerfile("deps", dockerfiles=dockerfiles),
             "requirements.txt": req.read_bytes() if req.is_file() else b"",  # the Dockerfile's COPY
             **_wheels(wheels_dir or testcase_dir / WHEELS_DIR)}
    # The host's CA bundle lets pip inside the build reach an index behind a TLS proxy.
    files["certs/ca.crt"] = _ca_bundle()
    return LayerSpec("deps", arch, f"collab/deps-{repo_name(testcase_dir.resolve().name)}",
                     files, {"PARENT": parent})


def runtime_spec(testcase_dir: Path, parent: str, arch: str, *,
                 dockerfiles: Path = IMAGES_DIR) -> LayerSpec:
    """The experiment's code under ``code/`` and the device packages (wrapper, device kit)."""
    from pytest_collab.runtime.shipping import device_packages

    testcase_dir = Path(testcase_dir)
    if not testcase_dir.is_dir():
        raise ImageError(f"{testcase_dir}: no such test case folder")
    code, code_x = _tree(testcase_dir, "code")
    files = {"Dockerfile": _dockerfile("runtime", dockerfiles=dockerfiles), **code}
    for name, folder in device_packages().items():
        files.update(_tree(folder, name)[0])
    return LayerSpec("runtime", arch, f"collab/{repo_name(testcase_dir.resolve().name)}",
                     files, {"PARENT": parent}, frozenset(code_x))


def layer_specs(testcase_dir: Path, arch: str = "amd64", *, base_from: str | None = None,
                   torch_wheel: Path | None = None, wheels_dir: Path | None = None,
                   dockerfiles: Path = IMAGES_DIR) -> list[LayerSpec]:
    """The three layers of a test case, each chained to its parent's tag."""
    base = base_spec(arch, base_from=base_from, torch_wheel=torch_wheel, dockerfiles=dockerfiles)
    deps = deps_spec(testcase_dir, base.tag, arch, wheels_dir=wheels_dir, dockerfiles=dockerfiles)
    return [base, deps, runtime_spec(testcase_dir, deps.tag, arch, dockerfiles=dockerfiles)]


def _image_id(client: "docker.DockerClient", tag: str) -> str | None:
    import docker.errors

    try:
        return client.images.get(tag).id
    except docker.errors.ImageNotFound:
        return None


_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)")


def build_layer(client: "docker.DockerClient", spec: LayerSpec, *, progress: Progress = print,
                force: bool = False, nocache: bool = False, host_arch: str | None = None) -> BuildResult:
    """Build one layer unless its tag is already in the engine ("cache hit").

    ``force`` builds even then (docker's step cache still applies); ``nocache`` skips both.
    """
    started = time.monotonic()
    tag = spec.tag
    existing = None if force or nocache else _image_id(client, tag)
    if existing:
        progress(f"[{spec.layer}] cache hit: {tag}")
        return BuildResult(spec.layer, tag, existing, built=False)
    progress(f"[{spec.layer}] building {tag}")
    kwargs = {}
    if spec.arch in PLATFORMS and PLATFORMS[spec.arch] != f"linux/{host_arch or platforms.host_arch()}":
        kwargs["platform"] = PLATFORMS[spec.arch]
    steps = cached = 0
    step = ""
    tail: list[str] = []
    for chunk in client.api.build(fileobj=spec.context(), custom_context=True, tag=tag,
                                  buildargs=spec.buildargs, decode=True, rm=True, forcerm=True, nocache=nocache,
                                  network_mode="host", labels={"pytest-collab.layer": spec.layer},
                                  **kwargs):
        if "error" in chunk:
            raise ImageError(f"[{spec.layer}] build of {tag} failed at {step or 'start'}: "
                             f"{chunk['error'].strip()}\n--- last build lines ---\n" + "\n".join(tail))
        for line in chunk.get("stream", "").splitlines():
            line = line.rstrip()
            if not line:
                continue
            tail = (tail + [line])[-20:]
            match = _STEP.match(line)
            if match:
                steps += 1
                step = f"step {match[1]}/{match[2]}"
                progress(f"[{spec.layer}] {step}: {match[3][:100]}")
            elif "Using cache" in line:
                cached += 1
                progress(f"[{spec.layer}] {step} cache hit")
    image_id = _image_id(client, tag)
    if image_id is None:
        raise ImageError(f"[{spec.layer}] build of {tag} ended without an image:\n" + "\n".join(tail))
    seconds = time.monotonic() - started
    progress(f"[{spec.layer}] built {tag} in {seconds:.1f}s ({cached}/{steps} steps from cache)")
    return BuildResult(spec.layer, tag, image_id, True, steps, cached, seconds)


def resolve_base_from(client: "docker.DockerClient", arch: str, base_from: str | None = "auto",
                      progress: Progress = print) -> str | None:
    """``"auto"``: the Dockerfile's upstream base when the engine has it, else a bootstrap one.

    The CI machine and offline labs can pull nothing, so "auto" falls back to
    :func:`pytest_collab.containers.bootstrap.bootstrap` (cached) instead of failing on a pull.
    """
    if base_from != "auto":
        return base_from
    if arch == "jetson":  # L4T's CUDA torch can not come from a Debian root fs
        return None
    default = re.search(rb"^ARG BASE_FROM=(\S+)", _dockerfile("base", arch, dockerfiles=IMAGES_DIR), re.M)
    if default and _image_id(client, default[1].decode()):
        return None
    from pytest_collab.containers.bootstrap import bootstrap

    return bootstrap(arch, client=client, progress=progress)


def build_testcase(testcase_dir: Path, arch: str = "amd64", *,
                   client: "docker.DockerClient | None" = None, base_from: str | None = "auto",
                   torch_wheel: Path | None = None, wheels_dir: Path | None = None,
                   progress: Progress = print, dockerfiles: Path = IMAGES_DIR) -> list[BuildResult]:
    """Build (or find) base, deps and runtime of a test case; the last result is runnable."""
    from pytest_collab.containers.engines import local_client

    client = client or local_client()
    base_from = resolve_base_from(client, arch, base_from, progress) if base_from == "auto" else base_from
    specs = layer_specs(testcase_dir, arch, base_from=base_from, torch_wheel=torch_wheel,
                           wheels_dir=wheels_dir, dockerfiles=dockerfiles)
    return [build_layer(client, spec, progress=progress) for spec in specs]


def download_wheels(requirements: Path, dest: Path, *, arch: str = "amd64",
                    python_version: str = "311", progress: Progress = print) -> list[Path]:
    """Fetch binary wheels of a ``requirements.txt`` for a device's platform into ``dest``.

    For labs whose devices have no internet: the controller downloads, the deps layer
    installs from the build context with ``--no-index``.
    """
    from pytest_collab.containers.wheels import WheelDownloadError
    from pytest_collab.containers.wheels import download_wheels as download

    try:
        return download(["-r", str(requirements)], dest, arch=arch, python_version=python_version,
                        progress=lambda line: progress(f"[deps] {line}"))
    except WheelDownloadError as exc:
        raise ImageError(f"{requirements}: {exc}; a package may have no binary wheel for that "
                         "platform") from None
