"""The emulated lab: each device of a profile as a container on this machine's engine.

A device container has its own network namespace and address on a bridge the lab
creates (the profile's ``emulation.subnet``), an sshd that takes the lab's own key (so the
controller uses the real SSH transport), the CPU and memory limits of its class
(``resources``) and its shaped uplink (``link``). The device itself gets no extra
capability: shaping runs once in a short-lived helper container that joins the device's
namespace with NET_ADMIN. Program containers of ``runtime: docker`` join the same
namespace (runtime/container.py finds the device container by label and address).
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pytest_collab.containers.tarball import tar_bytes
from pytest_collab.errors import CollabError
from pytest_collab.labs import shaping
from pytest_collab.runtime import labels as lbl

if TYPE_CHECKING:
    import docker

    from pytest_collab.lan.profile import LAN, Device

Progress = Callable[[str], None]
LAB = "collab.lab"
DEFAULT_SUBNET = "172.28.0.0/24"
SSH_WAIT_S = 30.0


class LabError(CollabError):
    """The emulated lab can not come up; the message names the device and the fix."""


@dataclass(frozen=True)
class Settings:
    """The profile's ``emulation:`` section, with defaults."""

    network: str
    subnet: str
    home: Path                 # keys, known_hosts, downloaded wheels
    packages: tuple[str, ...]
    torch_wheel: Path | None

    @classmethod
    def of(cls, lan: "LAN") -> "Settings":
        emu = dict(lan.emulation or {})
        unknown = set(emu) - {"network", "subnet", "home", "packages", "torch_wheel"}
        if unknown:
            raise LabError(f"profile {lan.name!r}: unknown emulation keys {', '.join(sorted(unknown))}; "
                           "allowed: network, subnet, home, packages, torch_wheel")
        torch = emu.get("torch_wheel") or os.environ.get("PYTEST_COLLAB_TORCH_WHEEL")
        return cls(network=str(emu.get("network") or f"collab-{lan.name}"),
                   subnet=str(emu.get("subnet") or DEFAULT_SUBNET),
                   home=Path(str(emu.get("home") or "~/.cache/pytest-collab/emulated")).expanduser(),
                   packages=tuple(emu.get("packages") or ()),
                   torch_wheel=Path(torch).expanduser() if torch else None)


def ensure_keys(home: Path) -> tuple[Path, Path]:
    """The lab's client key and the devices' host key (ed25519), made once, kept 0600."""
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    made = []
    for name in ("id_ed25519", "ssh_host_ed25519_key"):
        key = home / name
        if not key.is_file():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"collab-lab-{name}",
                            "-f", str(key)], check=True, capture_output=True)
        made.append(key)
    return made[0], made[1]


def _lab_labels(lan: "LAN", device: str = "") -> dict[str, str]:
    return {**lbl.labels(f"lab-{lan.name}", device=device, role="lab"), LAB: lan.name}


def _network(client: "docker.DockerClient", lan: "LAN", cfg: Settings) -> Any:
    import docker.types

    found = client.networks.list(names=[cfg.network])
    if found:
        return found[0]
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=cfg.subnet)])
    try:
        return client.networks.create(cfg.network, driver="bridge", ipam=ipam,
                                      labels=_lab_labels(lan))
    except Exception as exc:
        raise LabError(f"profile {lan.name!r}: can not create network {cfg.network} "
                       f"({cfg.subnet}): {exc}; pick a free emulation.subnet") from None


def container_name(lan: "LAN", device: "Device") -> str:
    return f"collab-lab-{lan.name}-{device.name}"


def _start_device(client: "docker.DockerClient", lan: "LAN", device: "Device", image: str,
                  cfg: Settings, keys: tuple[Path, Path], host_cpus: int) -> Any:
    import docker.errors

    from pytest_collab.runtime.container import limits

    name = container_name(lan, device)
    try:
        old = client.containers.get(name)
        if old.status == "running" and old.image.tags and image in old.image.tags:
            return old
        old.remove(force=True)
    except docker.errors.NotFound:
        pass
    host = client.api.create_host_config(network_mode=cfg.network, **limits(device, host_cpus))
    net = client.api.create_networking_config(
        {cfg.network: client.api.create_endpoint_config(ipv4_address=device.address)})
    try:
        cid = client.api.create_container(image, name=name, hostname=device.name, host_config=host,
                                          networking_config=net, labels=_lab_labels(lan, device.name),
                                          detach=True)["Id"]
    except docker.errors.APIError as exc:
        raise LabError(f"device {device.name!r}: can not create its container at {device.address} "
                       f"({exc.explanation or exc}); is the address inside {cfg.subnet} and free?") from None
    client_key, host_key = keys
    pub = Path(f"{client_key}.pub").read_bytes()
    client.api.put_archive(cid, "/", tar_bytes({
        "root/.ssh/authorized_keys": (pub, 0o600),
        "etc/ssh/ssh_host_ed25519_key": (host_key.read_bytes(), 0o600),
        "etc/ssh/ssh_host_ed25519_key.pub": (Path(f"{host_key}.pub").read_bytes(), 0o644)}))
    client.api.start(cid)
    return client.containers.get(cid)


def shape(client: "docker.DockerClient", device: "Device", container: Any, image: str) -> str:
    """Apply the device's link from a NET_ADMIN helper in its namespace; returns tc's view."""
    link = dict(device.link or {})
    text = shaping.script(link)
    out = client.containers.run(image, ["sh", "-c", f"(\n{text}\n) 2>&1 || echo COLLAB_SHAPING_FAILED"],
                                network_mode=f"container:{container.id}", cap_add=["NET_ADMIN"],
                                remove=True, labels={lbl.ROLE: "lab-helper"}).decode()
    if shaping.NETEM_UNKNOWN in out and shaping.wants_netem(link):
        raise shaping.refuse_delay(device.name, link, shaping.NETEM_UNKNOWN)
    if "COLLAB_SHAPING_FAILED" in out:
        raise shaping.ShapingError(f"device {device.name!r}: link {link} could not be applied:\n{out}")
    return out


def netem_available(client: "docker.DockerClient", image: str) -> tuple[bool, str]:
    """Whether this kernel can delay packets (tc netem), and tc's answer when it can not."""
    out = client.containers.run(image, ["sh", "-c", "tc qdisc add dev lo root netem delay 1ms 2>&1; true"],
                                cap_add=["NET_ADMIN"], network_mode="none", remove=True,
                                labels={lbl.ROLE: "lab-helper"}).decode().strip()
    return (not out, out)


def wait_ssh(device: "Device", timeout: float = SSH_WAIT_S) -> None:
    """Until the device's sshd sends its banner (the controller reaches the bridge directly)."""
    deadline = time.monotonic() + timeout
    port = device.ssh.port if device.ssh else 22
    while True:
        try:
            with socket.create_connection((device.address, port), timeout=1) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise LabError(f"device {device.name!r}: no sshd at {device.address}:{port} after "
                           f"{timeout:g}s; see `docker logs collab-lab-...-{device.name}`")
        time.sleep(0.2)


def up(lan: "LAN", *, client: "docker.DockerClient | None" = None, progress: Progress = print) -> dict[str, str]:
    """Bring every device of ``lan`` up (idempotent); returns device -> tc qdisc line."""
    from pytest_collab.containers.engines import local_client
    from pytest_collab.labs.emulated_image import device_image

    client = client or local_client()
    cfg = Settings.of(lan)
    keys = ensure_keys(cfg.home)
    image = device_image(client, packages=cfg.packages, torch_wheel=cfg.torch_wheel,
                         cache=cfg.home, progress=progress)
    _network(client, lan, cfg)
    host_cpus = int(client.info().get("NCPU", 1))

    def one(device: "Device") -> tuple[str, str]:
        container = _start_device(client, lan, device, image, cfg, keys, host_cpus)
        shaped = shape(client, device, container, image)
        wait_ssh(device)
        progress(f"[lab] {device.name} up at {device.address} ({container.short_id})")
        return device.name, shaped.strip().splitlines()[-1] if shaped.strip() else ""

    with ThreadPoolExecutor(max_workers=min(8, len(lan.devices))) as pool:
        return dict(pool.map(one, lan.devices))


def down(lan: "LAN", *, client: "docker.DockerClient | None" = None, progress: Progress = print) -> list[str]:
    """Remove the lab's device containers, the program containers in them, and its network."""
    from pytest_collab.containers.engines import local_client

    client = client or local_client()
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"{LAB}={lan.name}"}):
        container.remove(force=True)
        removed.append(container.name)
        progress(f"[lab] removed {container.name}")
    for network in client.networks.list(filters={"label": f"{LAB}={lan.name}"}):
        network.remove()
        removed.append(f"network {network.name}")
    return removed


def status(lan: "LAN", *, client: "docker.DockerClient | None" = None) -> dict[str, str]:
    """device -> container status ("running", "exited", "absent")."""
    from pytest_collab.containers.engines import local_client

    client = client or local_client()
    have = {c.labels.get(lbl.DEVICE): c.status for c in
            client.containers.list(all=True, filters={"label": [f"{LAB}={lan.name}", f"{lbl.ROLE}=lab"]})}
    return {d.name: have.get(d.name, "absent") for d in lan.devices}
