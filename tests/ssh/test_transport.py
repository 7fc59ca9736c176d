"""The SSH transport against real sshd servers on loopback."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from pytest_collab.errors import CollabWarning, TransportError
from pytest_collab.transport.ssh import connect

from .conftest import start_extra_sshd


@pytest.fixture
def trusted(ssh_lab, tmp_path):
    return ssh_lab.known_hosts(tmp_path / "lab.known_hosts")


@pytest.fixture
def dev0(ssh_lab, trusted):
    transport = connect(ssh_lab.device(0, known_hosts=str(trusted)))
    yield transport
    transport.close()


def test_run_returns_output_exit_code_and_env(dev0, tmp_path):
    result = dev0.run("echo out; echo err >&2; echo $COLLAB_X; pwd; exit 3",
                      env={"COLLAB_X": "a b"}, cwd=str(tmp_path))
    assert result.stdout.splitlines() == ["out", "a b", str(tmp_path)]
    assert result.stderr.strip() == "err"
    assert result.exit_code == 3 and result.error is None and not result.ok


def test_run_timeout_also_ends_the_remote_work(dev0, tmp_path):
    marker = tmp_path / "survivor"
    start = time.monotonic()
    result = dev0.run(f"(sleep 3; touch {marker}) & sleep 30", timeout=1)
    assert time.monotonic() - start < 6
    assert result.error and "timed out" in result.error
    time.sleep(3.5)
    assert not marker.exists(), "the remote child outlived the timeout"


def test_unknown_host_key_rejected_by_default(ssh_lab, tmp_path):
    empty = tmp_path / "empty.known_hosts"
    with pytest.raises(TransportError, match="unknown host key") as info:
        connect(ssh_lab.device(1, known_hosts=str(empty)), retries=0)
    assert "dev1" in str(info.value) and "tofu" in str(info.value)
    assert not empty.exists()


def test_tofu_records_then_accepts(ssh_lab, tmp_path):
    known = tmp_path / "sub" / "tofu.known_hosts"
    device = ssh_lab.device(2, known_hosts=str(known), host_key_policy="tofu")
    connect(device).close()
    line = known.read_text().strip()
    assert line == ssh_lab.servers[2].known_hosts_line
    assert oct(known.stat().st_mode & 0o777) == "0o600"
    # Second time: accepted from the file, nothing appended, even with policy reject.
    connect(ssh_lab.device(2, known_hosts=str(known))).close()
    assert known.read_text().strip() == line


def test_changed_key_refused_naming_file_and_line(ssh_lab, tmp_path, fresh_key):
    server = start_extra_sshd(ssh_lab, "moved", "127.0.1.12", fresh_key)
    try:
        known = tmp_path / "k.known_hosts"
        old = ssh_lab.servers[0].known_hosts_line.split(" ", 1)[1]
        known.write_text(f"# comment\nother.host {old}\n[{server.host}]:{server.port} {old}\n")
        from pytest_collab.lan.profile import Device, SSHConfig
        device = Device(name="moved", kind="rpi", address=server.host, transport="ssh",
                        ssh=SSHConfig(**ssh_lab.ssh_dict(port=server.port, known_hosts=str(known),
                                                         host_key_policy="tofu")))
        with pytest.raises(TransportError, match="CHANGED") as info:
            connect(device)
        assert f"{known} line 3" in str(info.value)
    finally:
        server.proc.terminate()
        server.proc.wait(5)


def test_closed_port_fails_fast_with_bounded_retries(ssh_lab, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.1.13", 0))
        port = sock.getsockname()[1]
    device = ssh_lab.device(0, port=port, connect_timeout=1.0)
    device.address = "127.0.1.13"
    start = time.monotonic()
    with pytest.raises(TransportError, match="after 3 attempts"):
        connect(device, retries=2, backoff_s=0.1)
    assert time.monotonic() - start < 3


def test_silent_server_fails_within_its_timeout(ssh_lab):
    """A server that accepts but never sends a banner."""
    server = socket.socket()
    server.bind(("127.0.1.14", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        device = ssh_lab.device(0, port=server.getsockname()[1], connect_timeout=1.0)
        device.address = "127.0.1.14"
        start = time.monotonic()
        with pytest.raises(TransportError, match="can not connect"):
            connect(device, retries=0)
        assert time.monotonic() - start < 4
    finally:
        stop.set()
        thread.join()
        server.close()
        for sock in held:
            sock.close()


def test_auth_failure_not_retried(ssh_lab, trusted, tmp_path):
    import subprocess
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    device = ssh_lab.device(0, key=str(other), known_hosts=str(trusted))
    start = time.monotonic()
    with pytest.raises(TransportError, match="authentication failed"):
        connect(device, retries=5, backoff_s=2)
    assert time.monotonic() - start < 2


def test_encrypted_key_never_prompts(ssh_lab, trusted, tmp_path):
    import subprocess
    key = tmp_path / "locked_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(key)], check=True)
    with pytest.raises(TransportError, match="encrypted|authentication failed"):
        connect(ssh_lab.device(0, key=str(key), known_hosts=str(trusted)), retries=0)


def test_group_readable_key_warns(ssh_lab, trusted, tmp_path):
    key = tmp_path / "loose_key"
    key.write_bytes(ssh_lab.client_key.read_bytes())
    key.chmod(0o644)
    with pytest.warns(CollabWarning, match="chmod 600"):
        connect(ssh_lab.device(0, key=str(key), known_hosts=str(trusted))).close()


def test_put_get_and_sync_only_changed(dev0, tmp_path):
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "a.txt").write_text("one")
    (src / "pkg" / "b.py").write_text("print(1)")
    remote = tmp_path / "remote"
    from pytest_collab.transport.ssh_stream import sync_tar
    assert sorted(sync_tar(dev0, src, str(remote))) == ["a.txt", "pkg/b.py"]
    assert (remote / "pkg" / "b.py").read_text() == "print(1)"
    (src / "a.txt").write_text("two")
    (src / "pkg" / "b.py").unlink()
    assert sync_tar(dev0, src, str(remote)) == ["a.txt"]
    assert (remote / "a.txt").read_text() == "two" and not (remote / "pkg" / "b.py").exists()
    dev0.put(src / "a.txt", str(tmp_path / "deep" / "put.txt"))
    assert (tmp_path / "deep" / "put.txt").read_text() == "two"
    dev0.get(str(remote / "a.txt"), tmp_path / "back" / "a.txt")
    assert (tmp_path / "back" / "a.txt").read_text() == "two"


def test_spawn_streams_lines_and_stdin_eof_reaches_remote(dev0, tmp_path):
    script = tmp_path / "prog.sh"
    script.write_text('echo "start $PROG_X"\nwhile read line; do echo "got $line"; done\n'
                      'echo "eof seen"\necho bye >&2\n')
    spawned = dev0.spawn(["sh", str(script)], cwd=str(tmp_path), env={"PROG_X": "1"})
    lines = spawned.lines()
    assert next(lines) == "start 1"
    assert spawned.poll() is None
    spawned.chan.sendall(b"ping\n")
    assert next(lines) == "got ping"
    spawned.close_stdin()
    assert list(lines) == ["eof seen"]
    assert spawned.wait(5) == 0
    assert spawned.stderr_tail == ["bye"]


def _gone(pid: int, within: float = 5) -> bool:
    deadline = time.monotonic() + within
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not Path(f"/proc/{pid}").exists()


def test_terminate_and_kill_end_the_remote_tree(dev0, tmp_path):
    pidfile = tmp_path / "child.pid"
    script = tmp_path / "tree.sh"
    script.write_text(f"sh -c \"trap '' TERM; exec sleep 300\" & echo $! > {pidfile}\n"
                      "echo ready\nwait\n")
    spawned = dev0.spawn(["sh", str(script)], cwd=str(tmp_path), env={})
    assert next(spawned.lines()) == "ready"
    child = int(pidfile.read_text())
    spawned.terminate()                 # the shell dies of TERM; its child ignores TERM...
    assert not _gone(child, 0.5)
    spawned.kill()                      # ...but the group's SIGKILL reaches it
    assert _gone(child)
    assert spawned.wait(5) is not None


def test_port_forward(dev0):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def echo() -> None:
        conn, _ = server.accept()
        conn.sendall(conn.recv(100).upper())
        conn.close()
    threading.Thread(target=echo, daemon=True).start()
    with dev0.forward(server.getsockname()[1]) as fwd:
        with socket.create_connection(("127.0.0.1", fwd.local_port), timeout=5) as sock:
            sock.sendall(b"hello")
            assert sock.recv(100) == b"HELLO"
    server.close()
