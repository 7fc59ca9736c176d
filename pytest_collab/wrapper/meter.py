"""An external power meter, for boards that measure nothing themselves (RPi 4 and older).

Declared per device in the profile (``power_meter:``, docs/energy.md) and handed to the
wrapper as ``--power-meter JSON`` with the same keys:

- ``command``: a shell command that prints watts, one reading per line. A command that
  prints once and exits is run again every ``period_s``; one that keeps printing is read
  as it goes (restarted, at most every ``period_s``, if it ends).
- ``serial``: a serial USB meter's device path (``/dev/ttyUSB0``), read line by line;
  ``baud`` sets its speed when the path is a terminal.
- ``scale``: multiplies each reading (``0.001`` for a meter that prints milliwatts).

The first number on each line is the reading. It is reported as ``power_w.meter``:
wall power of the whole board, the same for every process on it. A reading older than
three periods (at least 3 s) is not repeated: a stalled meter records gaps, not stale
numbers. One thread reads; the sampling loop only picks up the latest value.
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from typing import IO, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .probing import note, shown, under

KEYS = ("command", "serial", "baud", "period_s", "scale")
METRIC = "power_w.meter"
#: runs of a command without a reading before the meter is reported broken (once)
FAILED_RUNS = 3
#: bytes kept of a line still without its end (a meter printing garbage must not fill memory)
_LONGEST_LINE = 4096
_NUMBER = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def check(spec: Any) -> Dict[str, Any]:
    """The meter spec, validated; ValueError names the key and what it takes."""
    if not isinstance(spec, Mapping):
        raise ValueError("expected a mapping with 'command:' or 'serial:'")
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        raise ValueError("unknown key %r; allowed keys: %s" % (unknown[0], ", ".join(KEYS)))
    out = {k: v for k, v in spec.items() if v is not None}
    if ("command" in out) == ("serial" in out):
        raise ValueError("give exactly one of 'command:' (prints watts) or 'serial:' (a device path)")
    for key in ("command", "serial"):
        if key in out and (not isinstance(out[key], str) or not out[key].strip()):
            raise ValueError("%s: expected a non-empty string" % key)
    for key in ("period_s", "scale"):
        if key in out and (isinstance(out[key], bool) or not isinstance(out[key], (int, float))
                           or out[key] <= 0):
            raise ValueError("%s: expected a number greater than 0, got %r" % (key, out[key]))
    if "baud" in out:
        if "serial" not in out:
            raise ValueError("baud: only for a 'serial:' meter")
        if isinstance(out["baud"], bool) or not isinstance(out["baud"], int) or out["baud"] <= 0:
            raise ValueError("baud: expected a positive integer, got %r" % (out["baud"],))
    return out


def cli_args(spec: Optional[Mapping[str, Any]]) -> List[str]:
    """The wrapper options for a device's ``power_meter`` (none when it has no meter)."""
    if not spec:
        return []
    return ["--power-meter", json.dumps(dict(spec), separators=(",", ":"), sort_keys=True)]


def parse_line(line: bytes, scale: float = 1.0) -> Optional[float]:
    """The first number of a meter's line, scaled; None when the line holds none."""
    found = _NUMBER.search(line)
    return float(found.group()) * scale if found else None


#: characters that make a command a shell command (quotes, expansions, redirections, ...)
_SHELL_SYNTAX = frozenset("|&;<>()$`\\\"'*?[]#~=%{}!\n")


def command_argv(command: str) -> List[str]:
    """How to start ``command``: a plain ``program args`` line found on PATH as itself,
    anything else through ``/bin/sh -c`` (a shell start per reading costs about as much
    as the meter program itself)."""
    words = command.split()
    if words and not _SHELL_SYNTAX.intersection(command):
        found = shutil.which(words[0])
        if found:
            return [found] + words[1:]
    return ["/bin/sh", "-c", command]


def _inherited_fds() -> List[int]:
    """Descriptors above 2 a started command would inherit (left open by the wrapper's
    parent): closed in the child, as ``close_fds`` would. The wrapper opens none itself."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    found = []
    for fd in sorted(int(name) for name in names if name.isdigit() and int(name) > 2):
        try:
            if os.get_inheritable(fd):
                found.append(fd)
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return found


def _wait(pid: int) -> Optional[int]:
    """Reap ``pid``: its exit code, or minus the signal that ended it (as subprocess says)."""
    try:
        status = os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return None
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)


def spawn(argv: List[str], close: Sequence[int] = ()) -> Tuple[int, int, Callable[[], Optional[int]]]:
    """Start ``argv`` in a session of its own, stdin and stderr on /dev/null.

    Returns ``(pid, fd, wait)``: the read end of its stdout, and what reaps it. This runs
    once a second for a meter command, so it uses ``posix_spawn`` (vfork semantics: the
    wrapper's memory is not copied, and far less Python than ``subprocess`` runs);
    ``subprocess`` stays the fallback (Python 3.7, a C library without setsid in spawn).
    """
    r, w = os.pipe()
    try:
        try:
            actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0), (os.POSIX_SPAWN_DUP2, w, 1),
                       (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
            actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in close]
            # Python ignores SIGPIPE; a started program expects the default (subprocess resets it too).
            pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions, setsid=True,
                                 setsigdef=_DEFAULT_SIGNALS)
            return pid, r, functools.partial(_wait, pid)
        except (AttributeError, NotImplementedError):  # no posix_spawn, or no setsid in it
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=w, stderr=subprocess.DEVNULL,
                                    close_fds=True, start_new_session=True)
            return proc.pid, r, proc.wait
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)


_DEFAULT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, name))


def _set_baud(fd: int, baud: int) -> None:
    """Raw mode at ``baud`` on a terminal; other files (a FIFO in a demo) are left alone."""
    if not os.isatty(fd):
        return
    import termios
    import tty

    tty.setraw(fd)
    speed = getattr(termios, "B%d" % baud, None)
    if speed is None:
        raise ValueError("baud %d is not a standard speed" % baud)
    attrs = termios.tcgetattr(fd)
    attrs[4] = attrs[5] = speed
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class Meter:
    """One external meter read on a thread; calling it returns the fresh reading.

    ``on_problem`` hears, once, of a command that keeps printing no reading (it runs on
    the meter's thread, after start-up; problems found at start go to the start notes).
    """

    def __init__(self, spec: Mapping[str, Any], on_problem: Optional[Callable[[str], None]] = None) -> None:
        self.spec = check(spec)
        self.period = float(self.spec.get("period_s", 1.0))
        self.scale = float(self.spec.get("scale", 1.0))
        self.stale_s = max(3.0 * self.period, 3.0)
        self.units = {METRIC: "W"}
        self._latest: Optional[tuple] = None  # (monotonic time, watts)
        self._stop = threading.Event()
        self._pid: Optional[int] = None  # the running command's (its session's) pid
        self._on_problem = on_problem or note
        self._stream: Optional[IO[bytes]] = None
        if "serial" in self.spec:
            self._stream = self._open_serial()
            target = self._read_serial
        else:
            target = self._run_command
        self._thread = threading.Thread(target=target, name="collab-meter", daemon=True)
        if target == self._run_command or self._stream is not None:
            self._thread.start()

    def __call__(self) -> Dict[str, float]:
        latest = self._latest
        if latest is None or time.monotonic() - latest[0] > self.stale_s:
            return {}
        return {METRIC: round(latest[1], 3)}

    def _take(self, line: bytes) -> None:
        watts = parse_line(line, self.scale)
        if watts is not None:
            self._latest = (time.monotonic(), watts)

    def _open_serial(self) -> Optional[IO[bytes]]:
        path = under(self.spec["serial"])
        try:
            # O_NONBLOCK: opening a FIFO (a stand-in meter) must not wait for its writer.
            fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
            os.set_blocking(fd, True)
            _set_baud(fd, int(self.spec.get("baud", 115200)))
        except (OSError, ValueError) as exc:
            note("power meter %s can not be read (%s): check the 'power_meter: serial:' path in "
                 "the profile and that the wrapper's user may read it (group dialout)"
                 % (shown(path), exc))
            return None
        return os.fdopen(fd, "rb")

    def _read_serial(self) -> None:
        stream = self._stream
        if stream is None:
            return
        try:
            while not self._stop.is_set():
                line = stream.readline()
                if line:
                    self._take(line)
                else:  # no writer yet (a FIFO), or a hang-up: look again shortly
                    self._stop.wait(0.2)
        except (OSError, ValueError):
            pass  # unplugged, or closed by close()

    def _run_command(self) -> None:
        command = self.spec["command"]
        argv = command_argv(command)
        keep = _inherited_fds()
        failed = 0
        while not self._stop.is_set():
            started = time.monotonic()
            before = self._latest
            try:
                pid, fd, wait = spawn(argv, keep)
            except OSError as exc:
                if argv[0] != "/bin/sh":  # a script without a #! line, say: the shell runs it
                    argv = ["/bin/sh", "-c", command]
                    continue
                self._on_problem("power meter command %r can not be started (%s): check 'power_meter: "
                                 "command:' in the profile" % (command, exc))
                return
            self._pid = pid
            if self._stop.is_set():  # close() came while it started
                self._kill(signal.SIGTERM)
            self._read_lines(fd)
            code = wait()
            self._pid = None
            failed = 0 if self._latest is not before else failed + 1
            if failed == FAILED_RUNS and not self._stop.is_set():
                self._on_problem("power meter command %r printed no reading in %d runs (last exit code %s): "
                                 "check 'power_meter: command:' in the profile; it must print watts, one "
                                 "reading per line" % (command, FAILED_RUNS, code))
            self._stop.wait(max(0.0, self.period - (time.monotonic() - started)))

    def _read_lines(self, fd: int) -> None:
        """Take every line of ``fd`` as it comes (a streaming meter), until EOF; close it."""
        rest = b""
        try:
            while True:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()[-_LONGEST_LINE:]
                for line in lines:
                    self._take(line)
        except OSError:
            pass
        finally:
            os.close(fd)
        if rest:
            self._take(rest)

    def _kill(self, sig: int) -> None:
        """Signal the running command's session: the command and whatever it started."""
        pid = self._pid
        if pid is not None:
            try:
                os.killpg(pid, sig)
            except OSError:
                pass

    def close(self) -> None:
        """Stop reading: end the command, close the serial stream."""
        self._stop.set()
        if self._pid is not None:  # the thread reaps it: give it the time to, then insist
            self._kill(signal.SIGTERM)
            self._thread.join(timeout=2)
            self._kill(signal.SIGKILL)
        if self._stream is not None:
            try:
                self._stream.close()
            except OSError:
                pass
