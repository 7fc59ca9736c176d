"""The container runtime (``runtime: docker``): each program runs in its own container.

The test case's layered image (base -> deps -> runtime, content-hash tags, so an
unchanged experiment builds nothing) is built on the device's engine, or pulled from the
lab registry when ``registry=`` is given; the program then runs with the metrics wrapper
as entrypoint, attached so that our end of stdin is the wrapper's dead man's switch.

Where the container's network lives:

* a device of the emulated lab (a lab container labelled with the device's name and
  address runs on this machine's engine): the program shares that device's network
  namespace (its address, its shaped link) and gets the device's CPU and memory limits;
* a real device: the engine over SSH (``engines.client_for``), host networking, so the
  program is reachable at the device's address like a plain process.
"""
from __future__ import annotations

import os
import sys
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pytest_collab.containers.platforms import debian_arch
from pytest_collab.containers.tarball import tar_bytes
from pytest_collab.errors import CollabError, DeployError
from pytest_collab.runtime import labels as lbl
from pytest_collab.runtime.container_stream import ContainerSpawned
from pytest_collab.wrapper.meter import cli_args as meter_args

if TYPE_CHECKING:
    import docker

    from pytest_collab.lan.profile import Device
    from pytest_collab.transport.base import Transport

CODE_DIR = "/opt/collab/code"
FILES_DIR = "/opt/collab/files"
SECRETS_DIR = "/run/collab-secrets"


def lab_container(client: "docker.DockerClient", device: "Device") -> Any | None:
    """The running emulated-lab container standing for ``device``, if there is one here."""
    found = client.containers.list(filters={"label": [f"{lbl.ROLE}=lab", f"{lbl.DEVICE}={device.name}"],
                                            "status": "running"})
    for container in found:
        nets = container.attrs.get("NetworkSettings", {}).get("Networks", {})
        if any(net.get("IPAddress") == device.address for net in nets.values()):
            return container
    return None


def limits(device: "Device", host_cpus: int) -> dict[str, Any]:
    """``nano_cpus``/``mem_limit`` from the device's resources (clamped to the engine's CPUs)."""
    out: dict[str, Any] = {}
    cpus = device.resources.get("cpus")
    if cpus:
        out["nano_cpus"] = int(min(float(cpus), float(host_cpus)) * 1e9)
    memory = device.resources.get("memory_mb")
    if memory:
        out["mem_limit"] = f"{int(memory)}m"
    return out


class _Engines:
    """What every runtime on one engine shares in this process: the local engine's client,
    its ``info()`` and the images prepared on it.

    Emulated devices all live on this machine's engine: a client per device meant a
    version handshake, a ping and an ``info()`` per device, and every device checked (or
    built) the same image again. An image is reused while the test case folder's files
    are unchanged (names, sizes, mtimes); one device builds while the others wait.
    """

    lock = threading.Lock()
    local: "docker.DockerClient | None" = None
    info: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()
    images: dict[tuple, str] = {}
    building: dict[tuple, threading.Lock] = {}

    @classmethod
    def local_client(cls) -> "docker.DockerClient":
        from pytest_collab.containers.engines import local_client

        with cls.lock:
            if cls.local is None:
                cls.local = local_client()
            return cls.local

    @classmethod
    def info_of(cls, client: "docker.DockerClient") -> dict[str, Any]:
        with cls.lock:
            known = cls.info.get(client)
        if known is None:
            known = client.info()
            with cls.lock:
                cls.info[client] = known
        return known

    @classmethod
    def image(cls, key: tuple, make: Callable[[], str]) -> str:
        with cls.lock:
            gate = cls.building.setdefault(key, threading.Lock())
        with gate:
            if key not in cls.images:
                cls.images[key] = make()
            return cls.images[key]


def _fingerprint(folder: Path) -> tuple:
    """Names, sizes and mtimes of a test case's files: a change means a new image."""
    entries = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            stat = os.stat(os.path.join(root, name))
            entries.append((os.path.relpath(os.path.join(root, name), folder), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


class ContainerRuntime:
    """Programs of one device as containers on that device's engine."""

    python = "python3"

    def __init__(self, device: "Device", transport: "Transport", run_id: str, *,
                 client: "docker.DockerClient | None" = None, registry: str | None = None,
                 privileged: bool = False, grace: float = 5.0,
                 progress: Callable[[str], None] | None = None) -> None:
        self.device = device
        self.transport = transport
        self.run_id = run_id
        self.registry = registry
        self.privileged = privileged
        self.grace = grace
        self.progress = progress or (lambda line: print(f"[{device.name}] {line}", file=sys.stderr))
        self._client = client
        self._lab: Any = None
        self._resolved = False
        self._shared = False
        self._ncpu: int | None = None
        self._images: dict[Path, str] = {}
        self._image: str | None = None     # the last prepared test case's (fixtures: prepare, then launch)
        self._digests: dict[str, str] = {}
        self._files: dict[str, tuple[bytes, int]] = {}
        self._made: list[ContainerSpawned] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ engine
    @property
    def client(self) -> "docker.DockerClient":
        """The device's engine: this machine's for local and emulated devices, else over SSH."""
        if self._client is None or not self._resolved:
            from pytest_collab.containers.engines import client_for

            self._resolved = True
            local = self._client or _Engines.local_client()
            self._lab = lab_container(local, self.device) if self.device.transport != "local" else None
            if self._lab is not None or self.device.transport == "local" or self._client is not None:
                self._shared = self._client is None   # the process's local client: not ours to close
                self._client = local
            else:
                known = getattr(self.transport, "record_to", None)
                self._client = client_for(self.device, known_hosts=known)
        return self._client

    @property
    def _engine(self) -> str:
        """Which engine images live on: one key for this machine's, one per remote device."""
        client = self.client
        return "local" if client is _Engines.local or self._lab is not None or \
            self.device.transport == "local" else f"ssh:{self.device.name}:{id(client)}"

    def _arch(self) -> str:
        if self.device.arch:
            return self.device.arch
        machine = str(_Engines.info_of(self.client).get("Architecture", "x86_64")).lower()
        return debian_arch(machine)

    @property
    def image_digest(self) -> str | None:
        """The id (``sha256:...``) of the image programs run from now: provenance of results."""
        image = self._image
        if image is None:
            return None
        with self._lock:
            if image not in self._digests:
                self._digests[image] = str(self.client.images.get(image).id)
            return self._digests[image]

    # ------------------------------------------------------------------ Runtime
    def prepare(self, test_dir: Path) -> str:
        """Build (or find, or pull) the test case's image; the code is at CODE_DIR in it."""
        test_dir = Path(test_dir).resolve()
        with self._lock:
            if test_dir not in self._images:
                key = (self._engine, str(test_dir), self._arch(), self.registry, _fingerprint(test_dir))
                self._images[test_dir] = _Engines.image(key, lambda: self._image_for(test_dir))
            self._image = self._images[test_dir]
        return CODE_DIR

    def _image_for(self, test_dir: Path) -> str:
        from pytest_collab.containers.images import build_testcase, repo_name

        arch = self._arch()
        if self.registry:
            from pytest_collab.containers.registry import ensure

            name = f"collab/{repo_name(test_dir.name)}:{arch}"
            return ensure(name, build=test_dir, registry=self.registry, client=self.client,
                          arch=arch, progress=self.progress).ref
        results = build_testcase(test_dir, arch, client=self.client, progress=self.progress)
        return results[-1].tag

    def put(self, local: Path, *, secret: bool = False) -> str:
        """A file for the programs, copied into each container before it starts.

        ``secret=True`` puts it under /run/collab-secrets with mode 0400: secrets reach
        containers as files, never on command lines or in the environment.
        """
        local = Path(local)
        folder = SECRETS_DIR if secret else FILES_DIR
        path = f"{folder}/{local.name}"
        self._files[path] = (local.read_bytes(), 0o400 if secret else 0o644)
        return path

    def launch(self, argv: list[str], *, cwd: str, env: dict[str, str], hz: float,
               name: str) -> ContainerSpawned:
        """Create, attach and start a container whose entrypoint is the wrapper."""
        import docker.errors

        image = self._image
        if image is None:
            raise DeployError(f"device {self.device.name!r}: launch before prepare(); "
                              "call runtime.prepare(test_dir) first")
        client = self.client
        network = f"container:{self._lab.id}" if self._lab is not None else "host"
        test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
        entry = ["python3", "-m", "collab_wrapper", "--net-scope",
                 "netns" if self._lab is not None else "host", "--hz", f"{hz:g}",
                 "--grace", f"{self.grace:g}", *meter_args(self.device.power_meter), "--"]
        if self._ncpu is None:
            self._ncpu = int(_Engines.info_of(client).get("NCPU", 1))
        kwargs = limits(self.device, self._ncpu)
        api = client.api
        # detach=False + stdin_open is what sets StdinOnce: our EOF becomes the wrapper's EOF.
        host_config = api.create_host_config(network_mode=network, privileged=self.privileged, **kwargs)
        try:
            cid = api.create_container(
                image, argv, entrypoint=entry, working_dir=cwd, environment=env, detach=False,
                name=f"collab-{self.run_id}-{self.device.name}-{name}"[:120],
                labels=lbl.labels(self.run_id, device=self.device.name, test=test),
                stdin_open=True, tty=False, host_config=host_config)["Id"]
        except docker.errors.APIError as exc:
            raise DeployError(f"device {self.device.name!r}: can not create the container for "
                              f"{name!r} from {image}: {exc.explanation or exc}") from None
        try:
            if self._files:
                api.put_archive(cid, "/", tar_bytes(self._files))
            sock = api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            api.start(cid)
        except docker.errors.APIError as exc:
            api.remove_container(cid, force=True)
            raise DeployError(f"device {self.device.name!r}: can not start {name!r}: "
                              f"{exc.explanation or exc}") from None
        spawned = ContainerSpawned(client, cid, sock, name, grace=self.grace)
        self._made.append(spawned)
        return spawned

    def close(self) -> None:
        """Remove every container this runtime made (they are normally gone already)."""
        for spawned in self._made:
            try:
                spawned.kill()
            except Exception:  # noqa: BLE001 - teardown reaches every container
                pass
        self._made.clear()
        if self._client is not None and not self._shared:
            self._client.close()
        self._client = None
        self._resolved = False


def create(device: "Device", transport: "Transport", run_id: str, **options: Any) -> ContainerRuntime:
    """Options: ``client``, ``registry`` (host:port to pull images from), ``privileged``, ``grace``."""
    unknown = set(options) - {"client", "registry", "privileged", "grace", "progress"}
    if unknown:
        raise CollabError(f"device {device.name!r}: unknown container runtime options "
                          f"{', '.join(sorted(unknown))}")
    return ContainerRuntime(device, transport, run_id, **options)
