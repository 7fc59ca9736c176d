"""A base image with no registry to pull from: ``debootstrap`` root fs -> ``docker import``.

Offline labs and CI cannot pull ``debian:bookworm``; this module makes the same thing
from this machine's own apt mirror (read from its apt sources, so a lab's local mirror
or snapshot is honoured) and caches the root fs tarball under
``~/.cache/pytest-collab/bootstrap`` so later imports cost seconds, not minutes.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pytest_collab.containers.platforms import host_arch, kernel_arch
from pytest_collab.errors import CollabError

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]

#: Enough for the base layer to skip its own apt step: python3, numpy, pip, TLS roots.
DEFAULT_PACKAGES: tuple[str, ...] = ("python3", "python3-numpy", "python3-pip", "ca-certificates")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
#: Debian architecture names for our arch names (a Jetson's userland is arm64).
DEB_ARCH = {"amd64": "amd64", "arm64": "arm64", "jetson": "arm64"}
#: Repository of the imported images; the tag says arch and what went in.
REPOSITORY = "pytest-collab/bootstrap"


class BootstrapError(CollabError):
    """debootstrap or the import failed; the message says which step and what to install."""


def cache_dir() -> Path:
    """Where root fs tarballs are kept (``$XDG_CACHE_HOME`` honoured)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "pytest-collab" / "bootstrap"


def _sources_entries(apt_dir: Path) -> list[tuple[str, list[str]]]:
    """(URI, suites) of every enabled ``deb`` entry, one-line and deb822 formats alike."""
    entries: list[tuple[str, list[str]]] = []
    one_line = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            line = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()  # type: ignore[assignment]
            if len(line) >= 3 and line[0] == "deb":
                entries.append((line[1], [line[2]]))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                entries.append((fields.get("uris", "").split()[0] if fields.get("uris") else "",
                                fields.get("suites", "").split()))
    return [(uri, suites) for uri, suites in entries if uri]


def apt_mirror(suite: str, apt_dir: Path = Path("/etc/apt")) -> str:
    """The mirror this machine installs ``suite`` from (not its -security/-updates entries)."""
    for uri, suites in _sources_entries(apt_dir):
        if suite in suites:
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def host_suite() -> str:
    """This machine's Debian codename (``bookworm``), the suite debootstrap fetches."""
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return "bookworm"
    match = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", text, re.M)
    return match.group(1) if match else "bookworm"


def tarball_key(arch: str, suite: str, mirror: str, packages: tuple[str, ...]) -> str:
    """Hash of everything that changes the root fs; names the tarball and the image tag."""
    text = "\n".join([DEB_ARCH.get(arch, arch), suite, mirror, *sorted(packages)])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _run(argv: list[str], step: str, progress: Progress) -> None:
    """Run one step, streaming its output as progress; the error keeps the last lines."""
    tail: list[str] = []
    phase, count = "", 0
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-15:]
        # One progress line per debootstrap phase (and every 25 packages), not per package.
        word = line[3:].split(" ", 1)[0] if line.startswith("I: ") else ""
        count = count + 1 if word == phase else 1
        if word and (word != phase or count % 25 == 0):
            progress(f"[bootstrap] {step}: {word} ({count})" if count > 1 else f"[bootstrap] {step}: {line[3:]}")
        phase = word or phase
    if proc.wait() != 0:
        raise BootstrapError(f"{step} failed (exit {proc.returncode}): {' '.join(argv)}\n"
                             + "\n".join(tail))


def build_rootfs_tarball(arch: str = "amd64", *, suite: str | None = None, mirror: str | None = None,
                         packages: tuple[str, ...] = DEFAULT_PACKAGES,
                         progress: Progress = print, refresh: bool = False) -> Path:
    """debootstrap a minimal root fs with ``packages`` and tar it into the cache (once)."""
    suite = suite or host_suite()
    mirror = mirror or apt_mirror(suite)
    deb_arch = DEB_ARCH.get(arch)
    if deb_arch is None:
        raise BootstrapError(f"unknown arch {arch!r}; use one of {', '.join(DEB_ARCH)}")
    key = tarball_key(arch, suite, mirror, packages)
    tarball = cache_dir() / f"{suite}-{deb_arch}-{key}.tar"
    if tarball.exists() and not refresh:
        progress(f"[bootstrap] cache hit: {tarball}")
        return tarball
    if shutil.which("debootstrap") is None:
        raise BootstrapError("debootstrap is not installed: apt-get install debootstrap")
    if os.geteuid() != 0:
        raise BootstrapError("debootstrap needs root (it creates device nodes and chroots)")
    if deb_arch != host_arch() and not Path(f"/proc/sys/fs/binfmt_misc/qemu-{kernel_arch(deb_arch)}").exists():
        raise BootstrapError(f"a {deb_arch} root fs on a {host_arch()} host needs binfmt emulation: "
                             "apt-get install qemu-user-static binfmt-support")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="collab-rootfs-") as tmp:
        root = Path(tmp) / "root"
        progress(f"[bootstrap] debootstrap {suite} {deb_arch} from {mirror} (+{','.join(packages)})")
        _run(["debootstrap", "--variant=minbase", f"--arch={deb_arch}",
              f"--include={','.join(packages)}", suite, str(root), mirror], "debootstrap", progress)
        # What the image must not carry: package caches and the build host's identity.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for child in (root / junk).glob("*"):
                if child.is_file():
                    child.unlink()
        partial = tarball.with_suffix(".tar.part")
        _run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], "tar", progress)
        partial.rename(tarball)
    progress(f"[bootstrap] root fs cached: {tarball} ({tarball.stat().st_size >> 20} MiB)")
    return tarball


def import_tarball(client: "docker.DockerClient", tarball: Path, tag: str) -> str:
    """``docker import`` the root fs as ``tag``; returns the image id."""
    changes = ['ENV LANG=C.UTF-8',
               'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
               'CMD ["python3"]']
    repository, _, name = tag.rpartition(":")
    try:
        client.api.import_image_from_file(str(tarball), repository=repository, tag=name, changes=changes)
        return client.images.get(tag).id
    except Exception as exc:  # the SDK raises several kinds; the message is what matters
        raise BootstrapError(f"docker import of {tarball} as {tag} failed: {exc}") from exc


def bootstrap(arch: str = "amd64", *, client: "docker.DockerClient | None" = None,
              packages: tuple[str, ...] = DEFAULT_PACKAGES, suite: str | None = None,
              mirror: str | None = None, progress: Progress = print, refresh: bool = False) -> str:
    """Make (or reuse) the bootstrap base for ``arch``; returns its tag.

    The tag is ``pytest-collab/bootstrap:<arch>-<key>`` where key hashes suite, mirror
    and packages, so an image already in the engine is reused without touching the tarball.
    """
    from pytest_collab.containers.engines import local_client

    client = client or local_client()
    suite = suite or host_suite()
    mirror = mirror or apt_mirror(suite)
    tag = f"{REPOSITORY}:{arch}-{tarball_key(arch, suite, mirror, packages)}"
    if not refresh and _has_image(client, tag):
        progress(f"[bootstrap] cache hit: {tag}")
        return tag
    tarball = build_rootfs_tarball(arch, suite=suite, mirror=mirror, packages=packages,
                                   progress=progress, refresh=refresh)
    progress(f"[bootstrap] docker import {tarball.name} -> {tag}")
    import_tarball(client, tarball, tag)
    return tag


def _has_image(client: "docker.DockerClient", tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False
