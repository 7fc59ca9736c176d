"""The lab's model/image registry: a Registry HTTP API v2 client, a local server, ``ensure``.

Artifacts are named ``<task>/<model>:<arch>`` (``split/resnet18-head:arm64``) so each
device pulls the one for its architecture. ``ensure`` is the source documents' model
distribution flow: exists -> pull; else build, push, pull. ``serve`` runs Debian's
``docker-registry`` (distribution v2) with deletes enabled, bound to loopback by default.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pytest_collab.errors import CollabError

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]

#: Manifest kinds we accept: Docker v2 (single and list) and OCI (single and index).
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
DEFAULT_PORT = 5000


class RegistryError(CollabError):
    """The registry is unreachable or refused a request; the message names the URL."""


@dataclass(frozen=True)
class Ref:
    """``[registry/]repository[:tag|@digest]`` split into its parts."""

    registry: str | None
    repository: str
    reference: str           # a tag or a ``sha256:...`` digest

    @classmethod
    def parse(cls, text: str) -> "Ref":
        registry = None
        first, slash, rest = text.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            registry, text = first, rest
        if "@" in text:
            repository, _, reference = text.partition("@")
        else:
            repository, colon, reference = text.rpartition(":")
            if not colon or "/" in reference:
                repository, reference = text, "latest"
        if not repository:
            raise RegistryError(f"bad image reference {text!r}; expected <task>/<model>:<arch>")
        return cls(registry, repository, reference)

    def image(self, registry: str | None = None) -> str:
        """The reference as the docker engine names it (``host:port/repo:tag``)."""
        host = registry or self.registry
        sep = "@" if self.reference.startswith("sha256:") else ":"
        return f"{host + '/' if host else ''}{self.repository}{sep}{self.reference}"


def artifact_name(task: str, model: str, arch: str) -> str:
    """``<task>/<model>:<arch>``, the naming every device resolves its artifact by."""
    return f"{task}/{model}:{arch}"


class RegistryClient:
    """Registry HTTP API v2 over stdlib urllib (no auth: lab registries sit on the LAN)."""

    def __init__(self, url: str = f"http://127.0.0.1:{DEFAULT_PORT}", timeout: float = 30) -> None:
        if "://" not in url:
            url = f"http://{url}"
        self.url = url.rstrip("/")
        self.host = self.url.split("://", 1)[1]
        self.timeout = timeout

    def _request(self, method: str, path: str, accept: tuple[str, ...] = (), data: bytes | None = None,
                 content_type: str | None = None) -> tuple[int, dict, bytes]:
        url = path if path.startswith(("http://", "https://")) else self.url + path
        req = urllib.request.Request(url, data=data, method=method)
        if content_type:
            req.add_header("Content-Type", content_type)
        if accept:
            req.add_header("Accept", ", ".join(accept))
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise RegistryError(f"registry {self.url} unreachable ({exc}); start one with "
                                "`collab registry serve` or pass --registry") from exc

    def _json(self, path: str) -> dict:
        status, _, body = self._request("GET", path)
        if status != 200:
            raise RegistryError(f"GET {self.url}{path}: HTTP {status} {body[:200]!r}")
        return json.loads(body)

    def ping(self) -> bool:
        """True when the server speaks API v2."""
        try:
            return self._request("GET", "/v2/")[0] == 200
        except RegistryError:
            return False

    def catalog(self) -> list[str]:
        """Every repository, following the ``Link`` pagination."""
        repos: list[str] = []
        path = "/v2/_catalog?n=1000"
        while path:
            status, headers, body = self._request("GET", path)
            if status != 200:
                raise RegistryError(f"GET {self.url}{path}: HTTP {status}")
            repos += json.loads(body).get("repositories") or []
            link = headers.get("Link", "")
            path = link[link.find("<") + 1:link.find(">")] if link.startswith("<") else ""
        return repos

    def tags(self, repository: str) -> list[str]:
        """Tags of ``repository`` (empty when it has none left or does not exist)."""
        status, _, body = self._request("GET", f"/v2/{repository}/tags/list")
        if status == 404:
            return []
        if status != 200:
            raise RegistryError(f"{self.url}: tags of {repository}: HTTP {status}")
        return sorted(json.loads(body).get("tags") or [])

    def manifest(self, ref: str | Ref) -> tuple[str, str, dict]:
        """(digest, media type, manifest) of a tag or digest; RegistryError if absent."""
        ref = ref if isinstance(ref, Ref) else Ref.parse(ref)
        status, headers, body = self._request(
            "GET", f"/v2/{ref.repository}/manifests/{ref.reference}", MANIFEST_TYPES)
        if status != 200:
            raise RegistryError(f"{self.url}: no manifest for {ref.repository}:{ref.reference} "
                                f"(HTTP {status}); `collab registry tags {ref.repository}` lists tags")
        return headers.get("Docker-Content-Digest", ""), headers.get("Content-Type", ""), json.loads(body)

    def digest(self, ref: str | Ref) -> str | None:
        """The manifest digest of a tag (HEAD, no body), or None when absent."""
        ref = ref if isinstance(ref, Ref) else Ref.parse(ref)
        status, headers, _ = self._request(
            "HEAD", f"/v2/{ref.repository}/manifests/{ref.reference}", MANIFEST_TYPES)
        return headers.get("Docker-Content-Digest") if status == 200 else None

    def exists(self, ref: str | Ref) -> bool:
        return self.digest(ref) is not None

    def put_blob(self, repository: str, data: bytes) -> str:
        """Upload ``data`` as a blob (monolithic POST then PUT); returns its digest."""
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self._request("HEAD", f"/v2/{repository}/blobs/{digest}")[0] == 200:
            return digest
        status, headers, body = self._request("POST", f"/v2/{repository}/blobs/uploads/")
        location = headers.get("Location", "")
        if status != 202 or not location:
            raise RegistryError(f"{self.url}: blob upload to {repository} refused: HTTP {status} {body[:200]!r}")
        sep = "&" if "?" in location else "?"
        status, _, body = self._request("PUT", f"{location}{sep}digest={digest}", data=data,
                                        content_type="application/octet-stream")
        if status != 201:
            raise RegistryError(f"{self.url}: blob {digest} to {repository}: HTTP {status} {body[:200]!r}")
        return digest

    def put_manifest(self, ref: str | Ref, manifest: dict, media_type: str) -> str:
        """PUT a manifest under a tag; returns the digest the registry gives it."""
        ref = ref if isinstance(ref, Ref) else Ref.parse(ref)
        status, headers, body = self._request("PUT", f"/v2/{ref.repository}/manifests/{ref.reference}",
                                              data=json.dumps(manifest).encode(), content_type=media_type)
        if status != 201:
            raise RegistryError(f"{self.url}: manifest {ref.repository}:{ref.reference}: HTTP {status} "
                                f"{body[:300]!r}")
        return headers.get("Docker-Content-Digest", "")

    def delete(self, ref: str | Ref) -> str:
        """Delete the manifest a tag points to (by digest, as the API requires); returns it."""
        ref = ref if isinstance(ref, Ref) else Ref.parse(ref)
        digest = ref.reference if ref.reference.startswith("sha256:") else self.digest(ref)
        if not digest:
            raise RegistryError(f"{self.url}: {ref.repository}:{ref.reference} does not exist")
        status, _, body = self._request("DELETE", f"/v2/{ref.repository}/manifests/{digest}")
        if status == 405:
            raise RegistryError(f"{self.url}: deletes are disabled; set storage.delete.enabled: "
                                "true in the registry config (`collab registry serve` does)")
        if status not in (200, 202):
            raise RegistryError(f"{self.url}: delete {ref.repository}@{digest}: HTTP {status} {body[:200]!r}")
        return digest


@dataclass
class RegistryServer:
    """A ``docker-registry`` process this code started; ``stop()`` ends it."""

    process: subprocess.Popen
    url: str
    root: Path
    config: Path
    log: Path

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    def client(self) -> RegistryClient:
        return RegistryClient(self.url)

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def write_config(root: Path, port: int, host: str = "127.0.0.1") -> Path:
    """A distribution v2 config: filesystem storage under ``root``, deletes enabled."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"http:\n  addr: {host}:{port}\n"
    )
    return config


def serve(root: Path, port: int = DEFAULT_PORT, host: str = "127.0.0.1",
          wait: float = 15, binary: str = "docker-registry") -> RegistryServer:
    """Start Debian's ``docker-registry`` on ``host:port`` storing under ``root``."""
    exe = shutil.which(binary) or (binary if Path(binary).exists() else None)
    if exe is None:
        raise RegistryError(f"{binary} not found: apt-get install docker-registry")
    root = Path(root).resolve()
    config = write_config(root, port, host)
    log = root / "registry.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([exe, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = RegistryServer(proc, f"http://{host}:{port}", root, config, log)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if server.client().ping():
            return server
        time.sleep(0.1)
    server.stop()
    tail = log.read_text(errors="replace").splitlines()[-10:]
    raise RegistryError(f"docker-registry on {host}:{port} did not come up (config {config}; "
                        "is the port taken?):\n" + "\n".join(tail))


def push(client: "docker.DockerClient", image: str, ref: str, progress: Progress = print) -> str:
    """Tag the local ``image`` as ``ref`` (``host:port/repo:tag``) and push it."""
    parsed = Ref.parse(ref)
    repo = parsed.image().rsplit(":", 1)[0]
    client.images.get(image).tag(repo, parsed.reference)
    progress(f"[registry] push {ref}")
    _stream(client.api.push(repo, tag=parsed.reference, stream=True, decode=True), f"push {ref}")
    return ref


def pull(client: "docker.DockerClient", ref: str, progress: Progress = print) -> str:
    """Pull ``ref`` into the engine; returns the image id."""
    parsed = Ref.parse(ref)
    progress(f"[registry] pull {ref}")
    repo = parsed.image().rsplit(":", 1)[0]
    _stream(client.api.pull(repo, tag=parsed.reference, stream=True, decode=True), f"pull {ref}")
    return client.images.get(ref).id


def _stream(chunks: object, what: str) -> None:
    for chunk in chunks:  # type: ignore[attr-defined]
        if "error" in chunk:
            raise RegistryError(f"{what} failed: {chunk['error']}; a registry on another host "
                                "must be listed in the engine's insecure-registries (loopback is by default)")


@dataclass
class Ensured:
    """How ``ensure`` got the artifact: ``"pulled"`` (it existed) or ``"built"``."""

    ref: str
    how: str
    image_id: str


def ensure(ref: str, *, build: Callable[[], str] | Path | None = None, registry: str | None = None,
           client: "docker.DockerClient | None" = None, arch: str | None = None,
           base_from: str | None = "auto", progress: Progress = print) -> Ensured:
    """Exists in the registry -> pull; else build (a callable returning an image, or a test
    case folder), push, pull. ``ref`` is ``host:port/<task>/<model>:<arch>`` or, with
    ``registry``, ``<task>/<model>:<arch>``."""
    from pytest_collab.containers.engines import local_client

    parsed = Ref.parse(ref)
    host = registry or parsed.registry
    if not host:
        raise RegistryError(f"{ref}: no registry; write host:port/{ref} or pass --registry")
    full = parsed.image(host.split("://", 1)[-1])
    client = client or local_client()
    if RegistryClient(host).exists(parsed):
        progress(f"[registry] {full} exists")
        return Ensured(full, "pulled", pull(client, full, progress))
    if build is None:
        raise RegistryError(f"{full} is not in the registry and nothing builds it; pass --build TESTCASE_DIR")
    progress(f"[registry] {full} missing: building")
    if callable(build):
        image = build()
    else:
        from pytest_collab.containers.images import build_testcase

        results = build_testcase(Path(build), arch or parsed.reference, client=client,
                                 base_from=base_from, progress=progress)
        image = results[-1].tag
    push(client, image, full, progress)
    return Ensured(full, "built", pull(client, full, progress))
