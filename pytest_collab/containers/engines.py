"""A docker client for a device: this machine's socket, or the device's engine over SSH.

Over SSH the docker SDK's own adapter trusts only ``~/.ssh/known_hosts``; labs keep
their host keys beside the profile, so the adapter here applies the profile's rules
(``reject`` unknown keys, or ``tofu``: trust on first use and remember) through the SSH
transport's own ``hostkeys`` helpers and key rules, so both paths refuse and record keys
alike. The SDK is imported only here, when an engine is really needed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_collab.errors import CollabError, TransportError

if TYPE_CHECKING:
    import docker

    from pytest_collab.lan.profile import Device

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


class EngineError(CollabError):
    """No docker engine answers where one was expected; the message says how to start one."""


def local_client(base_url: str | None = None, timeout: float = 300) -> "docker.DockerClient":
    """This machine's engine (``DOCKER_HOST`` honoured); raises EngineError if none answers."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EngineError("the docker SDK is missing: pip install 'pytest-collab[docker]'") from exc
    url = base_url or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
    try:
        client = docker.DockerClient(base_url=url, timeout=int(timeout))
        client.ping()
    except Exception as exc:
        raise EngineError(f"no docker engine answers at {url} ({exc}); start one "
                          "(`dockerd > /tmp/dockerd.log 2>&1 &`) or set DOCKER_HOST") from exc
    return client


def engine_available(base_url: str | None = None) -> bool:
    """True when an engine answers (for skips and fixtures)."""
    try:
        local_client(base_url, timeout=5).close()
        return True
    except CollabError:
        return False


def ssh_url(device: "Device") -> str:
    """``ssh://user@host:port`` for a device's engine."""
    ssh = device.ssh
    user = (ssh.user if ssh and ssh.user else None) or os.environ.get("USER", "root")
    port = ssh.port if ssh else 22
    return f"ssh://{user}@{device.address}:{port}"


def known_hosts_path(device: "Device", profile_path: Path | None) -> Path | None:
    """The device's known_hosts file: its own setting, else ``<profile stem>.known_hosts``."""
    if device.ssh and device.ssh.known_hosts:
        return Path(device.ssh.known_hosts).expanduser()
    if profile_path is not None:
        return Path(profile_path).with_suffix(".known_hosts")
    return None


def ssh_client(device: "Device", *, profile_path: Path | None = None,
               known_hosts: str | Path | None = None, timeout: float = 300) -> "docker.DockerClient":
    """The device's engine over SSH, with the SSH transport's host-key rules and key file."""
    import docker
    import paramiko
    from docker.transport.sshconn import SSHHTTPAdapter

    from pytest_collab.transport import hostkeys
    from pytest_collab.transport.ssh import key_path, known_hosts_files

    url = ssh_url(device)
    ssh = device.ssh
    record_to, files = known_hosts_files(device, profile_path, known_hosts)
    policy = hostkeys.make_policy(device.name, ssh.host_key_policy if ssh else "reject", record_to, files)
    key = key_path(device)  # the SSH transport's rule: an unset key_env is an error

    class ProfileSSHAdapter(SSHHTTPAdapter):
        """The SDK's adapter, but with the lab's known_hosts files and host-key policy,
        and one connection pool per engine.

        The SDK keys its pools by the full request URL, so every distinct path (each image
        ``images.list()`` inspects) opened a new SSH session; sshd allows 10 per
        connection (MaxSessions) and the 11th request failed with "Connect failed".
        """

        def get_connection(self, url, proxies=None):
            return super().get_connection("http+docker://ssh", proxies)

        def _create_paramiko_client(self, base_url: str) -> None:
            super()._create_paramiko_client(base_url)
            hostkeys.load_into(self.ssh_client, files)
            self.ssh_client.set_missing_host_key_policy(policy)
            if key:
                self.ssh_params["key_filename"] = key
            self.ssh_params["timeout"] = ssh.connect_timeout if ssh else 10.0
            self.ssh_params["allow_agent"] = ssh.agent if ssh else True

    try:
        adapter = ProfileSSHAdapter(url, timeout=int(timeout))
    except paramiko.BadHostKeyException as exc:
        raise hostkeys.changed_key_error(
            device.name, files, hostkeys.host_key_name(device.address, ssh.port if ssh else 22),
            exc.key.get_name(), exc.key.fingerprint) from None
    except (paramiko.SSHException, OSError) as exc:
        raise TransportError(device.name, f"docker engine at {url}: {exc}") from exc
    # A client whose HTTP goes through our adapter: the same wiring the SDK does for
    # ssh:// URLs, with a fixed API version so construction opens no connection.
    client = docker.DockerClient(base_url="tcp://127.0.0.1:2375", version="1.41", timeout=int(timeout))
    api = client.api
    api.mount("http+docker://ssh", adapter)
    api._custom_adapter = adapter
    api.base_url = "http+docker://ssh"
    try:
        api._version = api.version(api_version=False)["ApiVersion"]
    except Exception as exc:
        raise TransportError(device.name, f"{url} answers SSH but not docker ({exc}); "
                             "is dockerd running there and the user in group docker?") from exc
    return client


def client_for(device: "Device | None" = None, *, profile_path: Path | None = None,
               known_hosts: str | Path | None = None, timeout: float = 300) -> "docker.DockerClient":
    """The engine a device's containers run on: local for local devices, else over SSH."""
    if device is None or device.transport == "local":
        return local_client(timeout=timeout)
    return ssh_client(device, profile_path=profile_path, known_hosts=known_hosts, timeout=timeout)
