"""The SSH transport (Fabric/paramiko): run, copy, sync, spawn and forward on one device.

Imported only when a profile has an SSH device (``transport/__init__.py`` imports
``transport/<name>.py`` by name), so fabric and paramiko load lazily. Rules a lab run
relies on: unknown host keys are refused unless the profile opts in to ``tofu``; every
connect step has a finite timeout; transient network failures are retried a few times,
auth and host-key failures never; nothing ever prompts (no password, no passphrase).
A dead link is declared within ``link_timeout`` (``ssh_liveness.py``) and the connection
is then given up for good: later calls fail at once instead of waiting on a timeout.
Environment values never go on a remote command line (``ps`` shows those): they travel
on the channel's stdin and the remote shell ``eval``s them before the command.
"""
from __future__ import annotations

import errno
import os
import shlex
import socket
import stat
import time
import warnings
from pathlib import Path
from typing import Any

from pytest_collab.errors import CollabWarning, TransportError
from pytest_collab.lan.profile import Device, SSHConfig
from pytest_collab.lan.schema import ENV_NAME_RE
from pytest_collab.transport import hostkeys
from pytest_collab.transport.base import CommandResult
from pytest_collab.transport.routes import local_route
from pytest_collab.transport.ssh_forward import Forward
from pytest_collab.transport.ssh_liveness import Liveness
from pytest_collab.transport.ssh_stream import SSHSpawned, sync_tar

DEFAULT_LINK_TIMEOUT_S = 15.0   # --collab-link-timeout
TIMEOUT_KILL_GRACE_S = 3        # `timeout -k`: SIGKILL this long after SIGTERM
TRANSIENT_ERRNOS = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH,
                    errno.ETIMEDOUT, errno.ECONNRESET, errno.EHOSTDOWN}


def connect(device: Device, **options: Any) -> "SSHTransport":
    """Open an SSH connection to ``device``.

    Options: ``profile_path`` (known_hosts defaults to ``<profile stem>.known_hosts``
    beside it), ``known_hosts`` (overrides), ``retries`` (default 2), ``backoff_s``
    (default 0.5, doubled per retry), ``connect_timeout`` (overrides the profile's),
    ``link_timeout`` (a dead link is declared within it), ``local_only`` (an emulated
    device: refuse an address this host does not route directly, before any packet).
    """
    transport = SSHTransport(device, **options)
    transport.open()
    return transport


def known_hosts_files(device: Device, profile_path: Path | None = None,
                      known_hosts: str | Path | None = None) -> tuple[Path | None, list[Path]]:
    """(file new keys are recorded to, every file keys are read from)."""
    cfg = device.ssh or SSHConfig()
    chosen = known_hosts or cfg.known_hosts
    own: Path | None = None
    if chosen:
        own = Path(chosen).expanduser()
        if not own.is_absolute() and profile_path is not None:
            own = Path(profile_path).parent / own
    elif profile_path is not None:
        own = Path(profile_path).with_suffix(".known_hosts")
    files = [own] if own is not None else []
    files.append(Path("~/.ssh/known_hosts").expanduser())
    return own, files


def key_path(device: Device) -> str | None:
    """The private key path from ``ssh.key`` or the env var ``ssh.key_env`` names."""
    cfg = device.ssh or SSHConfig()
    path = cfg.key
    if cfg.key_env:
        path = os.environ.get(cfg.key_env)
        if not path:
            raise TransportError(device.name, f"ssh.key_env names ${cfg.key_env}, which is not "
                                              f"set; export it with the path of the private key")
    if path is None:
        return None
    full = Path(path).expanduser()
    if not full.is_file():
        raise TransportError(device.name, f"ssh key {full} does not exist; fix ssh.key in the "
                                          f"profile or create it with ssh-keygen")
    if full.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.warn(CollabWarning(f"device {device.name!r}: ssh key {full} is readable by "
                                    f"group or others; run: chmod 600 {full}"), stacklevel=3)
    return str(full)


def env_prelude(env: dict[str, str] | None, read_timeout: float | None = None) -> tuple[str, bytes]:
    """(shell text, stdin bytes): the shell reads exactly the bytes and ``eval``s them, so
    the values never appear in a command line; the names are checked identifiers."""
    if not env:
        return "", b""
    for name in env:
        if not ENV_NAME_RE.match(str(name)):
            raise ValueError(f"environment variable name {name!r} is not valid "
                             f"(letters, digits and '_', not starting with a digit)")
    payload = "".join(f"export {name}={shlex.quote(str(value))}\n"
                      for name, value in env.items()).encode("utf-8")
    reader = f"head -c {len(payload)}"
    if read_timeout is not None:
        reader = f"timeout {max(read_timeout, 1):g} {reader}"
    return f'eval "$({reader})" || exit 125', payload


def _transient(exc: BaseException) -> bool:
    from paramiko.ssh_exception import NoValidConnectionsError
    if isinstance(exc, NoValidConnectionsError):
        return True
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return True
    return isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS


class SSHTransport:
    """One device over one SSH connection (reopened on demand)."""

    def __init__(self, device: Device, *, profile_path: Path | None = None,
                 known_hosts: str | Path | None = None, retries: int = 2,
                 backoff_s: float = 0.5, connect_timeout: float | None = None,
                 link_timeout: float | None = None, local_only: bool = False) -> None:
        self.device = device
        self.cfg = device.ssh or SSHConfig()
        self.retries = max(0, retries)
        self.backoff_s = backoff_s
        self.timeout = float(connect_timeout or self.cfg.connect_timeout)
        self.link_timeout = float(link_timeout or DEFAULT_LINK_TIMEOUT_S)
        self.local_only = local_only
        self.record_to, self.known_files = known_hosts_files(device, profile_path, known_hosts)
        self.conn: Any = None
        self.lost: str | None = None     # why the link was declared dead; then never reused
        self._liveness: Liveness | None = None

    # -- connection -------------------------------------------------------------------
    def _connection(self) -> Any:
        from fabric import Config, Connection
        key = key_path(self.device)
        kwargs = {"timeout": self.timeout, "banner_timeout": self.timeout,
                  "auth_timeout": self.timeout, "channel_timeout": self.timeout,
                  "allow_agent": self.cfg.agent, "look_for_keys": key is None,
                  "key_filename": [key] if key else []}
        conn = Connection(self.device.address, user=self.cfg.user, port=self.cfg.port,
                          config=Config(overrides={"load_ssh_configs": False}),
                          connect_kwargs=kwargs)
        # Fabric installs AutoAddPolicy (accept any key): replace it, explicitly.
        hostkeys.load_into(conn.client, self.known_files)
        conn.client.set_missing_host_key_policy(hostkeys.make_policy(
            self.device.name, self.cfg.host_key_policy,
            self.record_to if self.cfg.host_key_policy == "tofu" else None, self.known_files))
        return conn

    def _check_route(self) -> None:
        """An emulated device must sit on a network of this host: never leave through a gateway."""
        if self.local_only and local_route(self.device.address) is None:
            raise TransportError(self.device.name, f"{self.device.address} is not on a network of "
                                 f"this host (it would be reached through a gateway, off this "
                                 f"machine), so no connection is attempted; is the emulated lab "
                                 f"up? (collab lab up PROFILE)")

    def _declare_dead(self, reason: str) -> None:
        self.lost = f"link lost: {reason}"
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()     # wakes every read and write blocked on this connection

    def open(self) -> None:
        """Connect, retrying transient failures with backoff; never auth or key failures."""
        import paramiko
        if self.lost:
            raise TransportError(self.device.name, self.lost)
        self._check_route()
        where = f"{self.cfg.user or ''}{'@' if self.cfg.user else ''}{self.device.address}:{self.cfg.port}"
        attempt = 0
        while True:
            conn = self._connection()
            try:
                conn.open()
                self._liveness = Liveness(conn.client.get_transport(), self.link_timeout,
                                          self._declare_dead, self.device.name)
                self.conn = conn
                return
            except TransportError:
                conn.close()
                raise
            except paramiko.BadHostKeyException as exc:
                conn.close()
                raise hostkeys.changed_key_error(
                    self.device.name, self.known_files,
                    hostkeys.host_key_name(self.device.address, self.cfg.port), exc.key.get_name(),
                    exc.key.fingerprint) from None
            except paramiko.PasswordRequiredException:
                conn.close()
                raise TransportError(self.device.name, f"ssh key for {where} is encrypted and "
                                     f"nothing may prompt; load it into the agent (ssh-add KEY) "
                                     f"and keep ssh.agent: true") from None
            except paramiko.AuthenticationException as exc:
                conn.close()
                raise TransportError(self.device.name, f"authentication failed for {where} "
                                     f"({exc}); check ssh.user and ssh.key in the profile, or "
                                     f"authorize the key: ssh-copy-id -i KEY.pub {where}") from None
            except (OSError, paramiko.SSHException, EOFError) as exc:
                conn.close()
                if attempt < self.retries and _transient(exc):
                    time.sleep(self.backoff_s * (2 ** attempt))
                    attempt += 1
                    continue
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise TransportError(self.device.name, f"can not connect to {where}{tries}: "
                                     f"{exc or type(exc).__name__} (timeout {self.timeout:g}s); "
                                     f"is the device on and sshd running? "
                                     f"(collab lan check)") from None

    @property
    def client(self) -> Any:
        if self.lost:
            raise TransportError(self.device.name, self.lost)
        if self.conn is None or not self.conn.is_connected:
            self.open()
        return self.conn.client

    def _channel(self) -> Any:
        try:
            return self.client.get_transport().open_session(timeout=self.timeout)
        except TransportError:
            raise
        except Exception as exc:   # a dropped connection: one reconnect, then give up
            self.close()
            try:
                return self.client.get_transport().open_session(timeout=self.timeout)
            except Exception:
                raise TransportError(self.device.name, self.lost or f"connection lost ({exc})") from None

    def close(self) -> None:
        if self._liveness is not None:
            self._liveness.stop()
            self._liveness = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # -- commands -----------------------------------------------------------------------
    def wrap(self, command: str, *, env: dict[str, str] | None = None, cwd: str | None = None,
             timeout: float | None = None) -> tuple[str, bytes]:
        """(remote shell text, bytes to send on stdin first): cwd set, env read from stdin,
        and under coreutils ``timeout`` (its own process group, so the whole remote tree
        ends) when a timeout is given."""
        parts = []
        if cwd:
            parts.append(f"cd {shlex.quote(cwd)} || exit 125")
        try:
            prelude, payload = env_prelude(env, self.link_timeout)
        except ValueError as exc:
            raise TransportError(self.device.name, str(exc)) from None
        if prelude:
            parts.append(prelude)
        parts.append(command)
        script = "; ".join(parts)
        if timeout is None:
            return script, payload
        return (f"timeout -k {TIMEOUT_KILL_GRACE_S} {max(timeout, 0.1):g} "
                f"sh -c {shlex.quote(script)}"), payload

    def run(self, command: str, *, timeout: float | None = None,
            env: dict[str, str] | None = None, cwd: str | None = None) -> CommandResult:
        """Run ``command`` in the device's shell; a timeout ends the remote work too."""
        start = time.monotonic()
        result = CommandResult(device=self.device.name, command=command)
        try:
            chan = self._channel()
        except TransportError as exc:
            result.error = str(exc)
            result.duration_s = time.monotonic() - start
            return result
        script, payload = self.wrap(command, env=env, cwd=cwd, timeout=timeout)
        try:
            chan.exec_command(script)
            chan.sendall(payload)
            chan.shutdown_write()
        except Exception as exc:   # noqa: BLE001 - the link died under us
            chan.close()
            result.error = self.lost or f"connection lost ({exc})"
            result.duration_s = time.monotonic() - start
            return result
        # Local backstop: the remote `timeout` should end it; if the link hangs, we do.
        deadline = None if timeout is None else start + timeout + TIMEOUT_KILL_GRACE_S + 5
        out, err = bytearray(), bytearray()
        chan.settimeout(0.2)
        while True:
            got = False
            while chan.recv_ready():
                out += chan.recv(65536)
                got = True
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
                got = True
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            if chan.closed and not got:
                break
            if deadline is not None and time.monotonic() > deadline:
                result.error = f"no answer within {timeout:g}s; connection closed"
                break
            if not got:
                time.sleep(0.01)
        result.duration_s = time.monotonic() - start
        result.stdout = out.decode("utf-8", "replace")
        result.stderr = err.decode("utf-8", "replace")
        if result.error is None:
            code = chan.recv_exit_status() if chan.exit_status_ready() else None
            result.exit_code = None if code == -1 else code
            if code is None or code == -1:
                result.error = self.lost or "the connection closed before the command ended"
            elif timeout is not None and code in (124, 137) and result.duration_s >= timeout * 0.95:
                result.error = f"timed out after {timeout:g}s (the remote command was ended)"
        chan.close()
        return result

    # -- files --------------------------------------------------------------------------
    def put(self, local: Path, remote: str) -> None:
        self.client  # noqa: B018  (connect, or reconnect, first)
        self._mkdir(os.path.dirname(remote))
        try:
            self.conn.put(str(local), remote)
        except Exception as exc:   # noqa: BLE001 - OSError, or the link died under us
            raise TransportError(self.device.name, f"can not copy {local} to {remote}: "
                                                   f"{self.lost or exc}") from None

    def get(self, remote: str, local: Path) -> None:
        self.client  # noqa: B018  (connect, or reconnect, first)
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn.get(remote, str(local))
        except Exception as exc:   # noqa: BLE001 - OSError, or the link died under us
            raise TransportError(self.device.name, f"can not fetch {remote} to {local}: "
                                                   f"{self.lost or exc}") from None

    def _mkdir(self, remote_dir: str) -> None:
        if remote_dir:
            res = self.run(f"mkdir -p {shlex.quote(remote_dir)}", timeout=self.timeout + 20)
            if not res.ok:
                raise TransportError(self.device.name, f"can not create {remote_dir}: "
                                                       f"{res.error or res.stderr.strip()}")

    def sync(self, local_dir: Path, remote_dir: str) -> None:
        """Make ``remote_dir`` mirror ``local_dir``; only changed files travel (sha256)."""
        sync_tar(self, Path(local_dir), remote_dir)

    # -- long-running processes -----------------------------------------------------------
    def spawn(self, argv: list[str], *, cwd: str, env: dict[str, str],
              heartbeat: float | None = None) -> SSHSpawned:
        """Start ``argv`` on the device; stdout streams back line by line while it runs.

        Closing our side of stdin reaches the remote process as EOF (the wrapper's dead
        man's switch); with ``heartbeat`` a newline is written to its stdin that often
        (the wrapper's ``--heartbeat`` ends the tree when they stop: the link died). The
        remote process leads its own process group, so ``terminate`` and ``kill`` reach
        its whole tree.
        """
        command = " ".join(shlex.quote(a) for a in argv)
        # sshd runs the command in a new session: the login shell's $$ is the group id,
        # and `exec` keeps that pid for the program itself.
        script, payload = self.wrap(f"echo {SSHSpawned.PID_MARK}$$ >&2; exec {command}", env=env, cwd=cwd)
        chan = self._channel()
        try:
            chan.exec_command(script)
            chan.sendall(payload)
        except Exception as exc:   # noqa: BLE001 - the link died under us
            chan.close()
            raise TransportError(self.device.name, self.lost or f"connection lost ({exc})") from None
        return SSHSpawned(self, chan, command, heartbeat=heartbeat)

    def signal_group(self, pgid: int, sig: str) -> None:
        """Send ``sig`` to a remote process group (best effort: the link may be gone)."""
        if self.lost:
            return   # the device ends its own tree when the heartbeats stop
        try:
            # `kill -SIG -PGID`, not `kill -SIG -- -PGID`: dash and busybox reject the `--`.
            self.run(f"kill -{sig} -{pgid} 2>/dev/null || kill -{sig} {pgid} 2>/dev/null",
                     timeout=self.timeout + 5)
        except Exception:   # noqa: BLE001 - teardown must never raise
            pass

    def forward(self, remote_port: int, *, remote_host: str = "127.0.0.1",
                local_port: int = 0) -> Forward:
        """A local port forwarded to ``remote_host:remote_port`` as seen from the device;
        use as a context manager, ``.local_port`` is the bound port."""
        return Forward(self.client.get_transport(), remote_host, remote_port, local_port,
                       self.device.name)
