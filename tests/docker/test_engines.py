"""A device's engine over SSH (real sshd on loopback -> `docker system dial-stdio`), host-key rules."""
from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from pytest_collab.containers.engines import client_for, local_client, ssh_url
from pytest_collab.containers.registry import free_port
from pytest_collab.errors import TransportError
from pytest_collab.lan.profile import Device, SSHConfig

HOST = "127.0.2.9"   # a loopback address only these tests listen on


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory, docker_engine):
    """One sshd on HOST:free port whose user can run `docker` (the engine's dial-stdio)."""
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd_bin) or shutil.which("docker") is None:
        pytest.skip("needs openssh-server and the docker CLI (for `docker system dial-stdio`)")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    root = tmp_path_factory.mktemp("sshd")
    host_pub = _keygen(root / "host_key")
    (root / "authorized").write_text(_keygen(root / "client_key") + "\n")
    port = free_port(HOST)
    # MaxSessions 10 is sshd's default, stated: the engine client must live within it.
    (root / "config").write_text(
        f"ListenAddress {HOST}:{port}\nHostKey {root / 'host_key'}\nAuthorizedKeysFile {root / 'authorized'}\n"
        "StrictModes no\nUsePAM no\nPermitRootLogin yes\nPasswordAuthentication no\nPidFile none\nMaxSessions 10\n"
        f"SetEnv PATH={os.environ.get('PATH', '/usr/local/bin:/usr/bin:/bin')}\n")
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(root / "config")],
                            stdout=subprocess.DEVNULL, stderr=open(root / "log", "wb"))
    for _ in range(100):
        try:
            socket.create_connection((HOST, port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield root, port, host_pub
    proc.terminate()
    proc.wait(5)


def _device(root: Path, port: int, known: Path, policy: str = "reject") -> Device:
    ssh = SSHConfig(user=getpass.getuser(), port=port, key=str(root / "client_key"), agent=False,
                    host_key_policy=policy, known_hosts=str(known), connect_timeout=5)
    return Device(name="dev-ssh", kind="rpi", address=HOST, transport="ssh", runtime="docker", ssh=ssh)


def test_local_device_gets_local_engine(docker_client):
    assert client_for(None).ping() and client_for(Device(name="d", kind="laptop")).ping()


def test_engine_over_ssh_with_known_key(sshd, docker_client, tmp_path):
    root, port, host_pub = sshd
    known = tmp_path / "lab.known_hosts"
    known.write_text(f"[{HOST}]:{port} {' '.join(host_pub.split()[:2])}\n")
    device = _device(root, port, known)
    assert ssh_url(device) == f"ssh://{getpass.getuser()}@{HOST}:{port}"
    remote = client_for(device)
    try:
        assert remote.ping()
        local_ids = {i.id for i in local_client().images.list()}
        assert {i.id for i in remote.images.list()} == local_ids   # the same engine, reached over SSH
    finally:
        remote.close()


def test_unknown_host_key_is_rejected(sshd, docker_client, tmp_path):
    root, port, _ = sshd
    with pytest.raises(TransportError, match=r"dev-ssh.*unknown host key.*ssh-keyscan"):
        client_for(_device(root, port, tmp_path / "empty.known_hosts"))


def test_tofu_records_the_key(sshd, docker_client, tmp_path):
    root, port, host_pub = sshd
    known = tmp_path / "tofu.known_hosts"
    client_for(_device(root, port, known, policy="tofu")).close()
    assert host_pub.split()[1] in known.read_text()
    client_for(_device(root, port, known, policy="reject")).close()   # now known: accepted


def test_engine_over_ssh_follows_the_transport_key_rule(monkeypatch) -> None:
    """An unset ``ssh.key_env`` is an error naming the variable on both paths (it was silently
    ignored by the engine path and raised by the SSH transport)."""
    from pytest_collab.containers.engines import ssh_client
    from pytest_collab.errors import TransportError
    from pytest_collab.lan.profile import Device, SSHConfig

    monkeypatch.delenv("COLLAB_TEST_UNSET_KEY", raising=False)
    device = Device(name="rpi-x", kind="rpi", address="127.0.0.1", transport="ssh",
                    ssh=SSHConfig(user="pi", key_env="COLLAB_TEST_UNSET_KEY"))
    with pytest.raises(TransportError, match=r"\$COLLAB_TEST_UNSET_KEY, which is not set"):
        ssh_client(device)
