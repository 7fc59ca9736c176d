"""Ordered deployment of device programs: start, readiness, waits, teardown that always runs.

A :class:`Program` reads its wrapper's JSON lines on a thread: output goes to the log and
to readiness matching, samples to the metrics sink, ``COLLAB_RESULT`` lines to
``results()``. The same code serves every runtime and transport, since they all hand
back a stream in the wrapper protocol.
"""
from __future__ import annotations

import collections
import json
import re
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, Union

from pytest_collab.devicekit.emit import PREFIX as RESULT_PREFIX
from pytest_collab.errors import ProgramFailed, TransportError
from pytest_collab.wrapper.emit import decode

if TYPE_CHECKING:
    from pytest_collab.lan.profile import Device
    from pytest_collab.transport.base import Spawned

TAIL_LINES = 40
#: in a failure message: the first program to die shows this many last lines, the others
#: FAILURE_OTHER_LINES each, every line cut at FAILURE_LINE_CHARS
FAILURE_FIRST_LINES = 15
FAILURE_OTHER_LINES = 5
FAILURE_LINE_CHARS = 300
#: how long a failure waits for the other programs' exit lines still on their way
PEER_SETTLE_S = 0.5
#: wrapper ``m`` objects handed to the sink per call (6.4 s at 10 Hz): one lock and one
#: call per batch instead of per line; the raw .jsonl keeps every line meanwhile
SAMPLE_BATCH = 64
#: metric names of board power and energy (docs/energy.md)
POWER_PREFIXES = ("power_w.", "energy_j.")
RAW_FLUSH_S = 0.5


class MetricsSink(Protocol):
    def add_samples(self, *, run: str, test: str, device: str, program: str, pid: int,
                    samples: list[dict[str, Any]], units: dict[str, str]) -> None: ...


@dataclass(frozen=True)
class Port:
    """Readiness: the program's device accepts TCP connections on ``port``."""

    port: int


Ready = Union[str, "re.Pattern[str]", Port, None]


@dataclass(frozen=True)
class ProgramContext:
    """Where a program's data goes; shared by all programs of one test."""

    run_id: str
    test: str
    log_dir: Path
    sink: MetricsSink | None
    redact: Callable[[str], str] | None = None   # secrets -> "***" in logs and results
    #: called with each parsed ``COLLAB_RESULT`` row as it is printed (the session journals it)
    on_result: Callable[["Program", dict[str, Any]], None] | None = None


class Program:
    """One device program under the wrapper, as the test sees it."""

    def __init__(self, name: str, device: "Device", role: str, argv: Sequence[str],
                 spawned: "Spawned", ctx: ProgramContext, ready: Ready = None) -> None:
        self.name = name
        self.device = device
        self.role = role
        self.argv = list(argv)
        self.ctx = ctx
        self.match: re.Match[str] | None = None
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.exit_signal: int | None = None
        self.wall_s: float | None = None
        self.ended_at: float | None = None       # controller's monotonic clock, at the end
        self.peers: list[Program] = [self]       # the test's programs (set by deployment.Deployment)
        self.units: dict[str, str] = {}
        #: the device's power and energy metrics the wrapper found at start (board level)
        self.power_metrics: list[str] = []
        self._power: list[tuple[float, dict[str, float]]] = []  # (t, power/energy values) per sample
        self._started = False
        self._spawned = spawned
        self._ready_rule = re.compile(ready) if isinstance(ready, str) else ready
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._output: list[str] = []
        self._results: list[dict[str, Any]] = []
        self._samples: list[dict[str, Any]] = []  # m objects not yet handed to the sink
        self._cond = threading.Condition()
        self._ready = ready is None
        self._finished = False
        self._stopped = False
        ctx.log_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{device.name}.{name}"
        self._log = open(ctx.log_dir / f"{stem}.log", "a", encoding="utf-8")
        # line-buffered: the dashboard's Live page (and a crash) sees every line at once
        self._raw = open(ctx.log_dir / f"{stem}.jsonl", "a", encoding="utf-8", buffering=1)
        # Who these raw lines belong to, so `collab recover` can rebuild metrics after a crash.
        self._raw.write(json.dumps({"k": "program", "run": ctx.run_id, "test": ctx.test,
                                    "device": device.name, "program": name}) + "\n")
        self._reader = threading.Thread(target=self._read, name=f"collab-{stem}", daemon=True)
        self._reader.start()

    # ------------------------------------------------------------------ reading
    @property
    def address(self) -> str:
        return self.device.address

    @property
    def port(self) -> int | None:
        if isinstance(self._ready_rule, Port):
            return self._ready_rule.port
        return None

    def _read(self) -> None:
        redact = self.ctx.redact
        try:
            flushed = time.monotonic()
            for line in self._spawned.lines():
                if redact is not None:
                    line = redact(line)
                self._raw.write(line + "\n")
                obj = decode(line)
                if obj is None:
                    self._on_output({"s": "wrapper", "line": line, "t": time.time()})
                    continue
                kind = obj["k"]
                # The raw log is what `collab recover` rebuilds from after a kill -9: out of
                # Python's buffer at least every RAW_FLUSH_S, and at once for all but samples.
                if kind != "m" or time.monotonic() - flushed > RAW_FLUSH_S:
                    self._raw.flush()
                    flushed = time.monotonic()
                if kind == "out":
                    self._on_output(obj)
                elif kind == "m":
                    if self.power_metrics:  # kept for the test too (energy within the test)
                        v = obj.get("v", {})
                        self._power.append((obj["t"], {k: v[k] for k in self.power_metrics if k in v}))
                    self._samples.append(obj)
                    if len(self._samples) >= SAMPLE_BATCH:
                        self._flush_samples()
                elif kind == "start":
                    self.pid = obj.get("pid")
                    self.units = obj.get("units", {})
                    self.power_metrics = [m for m in obj.get("board", []) if m.startswith(POWER_PREFIXES)]
                    with self._cond:
                        self._started = True
                        self._cond.notify_all()
                elif kind == "note":  # the wrapper's own word (no power sensor, ...): log only
                    stamp = time.strftime("%H:%M:%S", time.localtime(obj.get("t", time.time())))
                    self._log.write(f"{stamp} collab_wrapper: {obj.get('line', '')}\n")
                elif kind == "exit":
                    self.exit_code = obj.get("code")
                    self.exit_signal = obj.get("signal")
                    self.wall_s = obj.get("wall_s")
        except Exception as exc:  # a broken stream must not lose what came before
            self._on_output({"s": "collab", "line": f"reading the program's stream failed: {exc!r}",
                             "t": time.time()})
        finally:
            try:
                self._flush_samples()
            except Exception as exc:  # e.g. the session already closed its writer
                self._on_output({"s": "collab", "line": f"last samples not stored: {exc!r}",
                                 "t": time.time()})
            code = self._spawned.wait(timeout=10)
            if self.exit_code is None and self.exit_signal is None:
                self.exit_code = code
            self.ended_at = time.monotonic()
            for line in self._spawned.stderr_tail:
                self._tail.append(f"[wrapper stderr] {line}")
            self._log.close()
            self._raw.flush()
            self._raw.close()
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _on_output(self, obj: dict[str, Any]) -> None:
        line = str(obj.get("line", ""))
        if self.ctx.redact is not None:   # the decoded line (JSON escapes undone)
            line = self.ctx.redact(line)
        stamp = time.strftime("%H:%M:%S", time.localtime(obj.get("t", time.time())))
        self._log.write(f"{stamp} {obj.get('s', '?')}: {line}\n")
        self._log.flush()
        self._tail.append(line)
        self._output.append(line)
        if line.startswith(RESULT_PREFIX):
            try:
                row = json.loads(line[len(RESULT_PREFIX):])
            except ValueError:
                self._tail.append(f"[collab] unparsable {RESULT_PREFIX.strip()} line ignored")
            else:
                self._results.append(row)
                if self.ctx.on_result is not None and isinstance(row, dict):
                    try:
                        self.ctx.on_result(self, row)
                    except Exception as exc:  # noqa: BLE001  (the reader must go on)
                        self._tail.append(f"[collab] result row not journalled: {exc!r}")
        if not self._ready and isinstance(self._ready_rule, re.Pattern):
            match = self._ready_rule.search(line)
            if match:
                with self._cond:
                    self.match = match
                    self._ready = True
                    self._cond.notify_all()

    def _flush_samples(self) -> None:
        """Hand the buffered ``m`` objects to the sink at once (an object's pid wins)."""
        batch, self._samples = self._samples, []
        sink = self.ctx.sink
        if sink is not None and batch:
            sink.add_samples(run=self.ctx.run_id, test=self.ctx.test, device=self.device.name,
                             program=self.name, pid=int(self.pid or 0), samples=batch,
                             units=self.units)

    # ------------------------------------------------------------------ waiting
    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def ready(self) -> bool:
        return self._ready

    def tail(self) -> list[str]:
        return list(self._tail)

    def board_power(self, timeout: float = 60.0) -> list[str]:
        """The power/energy metrics the wrapper found on the device (waits for its start line)."""
        with self._cond:
            self._cond.wait_for(lambda: self._started or self._finished, timeout)
        return list(self.power_metrics)

    def power_samples(self) -> list[tuple[float, dict[str, float]]]:
        """``(t, {metric: value})`` of every sample so far: the board's power and energy."""
        return list(self._power)

    def output(self) -> list[str]:
        """Every line the program printed so far (stdout and stderr)."""
        return list(self._output)

    def results(self) -> list[dict[str, Any]]:
        """The objects the program printed as ``COLLAB_RESULT {json}`` lines."""
        return list(self._results)

    @property
    def lost(self) -> str | None:
        """Why the link to this program's device died, if it did."""
        return getattr(self._spawned, "lost", None)

    @property
    def died(self) -> bool:
        """Ended on its own with a non-zero code or a signal (not stopped by the test)."""
        return self._finished and not self._stopped and bool(self.exit_code or self.exit_signal)

    def _failure(self, message: str) -> "ProgramFailed | TransportError":
        """The error a test sees: the program that died first leads (with its signal),
        then the others' last lines, trimmed; a dead link is the device's error."""
        if self.lost:
            return TransportError(self.device.name, f"program {self.name!r}: {self.lost}")
        deadline = time.monotonic() + PEER_SETTLE_S
        for peer in self.peers:    # exit lines of programs that died with this one
            if peer is not self:
                peer._await_end(max(0.0, deadline - time.monotonic()))
        dead = sorted((p for p in self.peers if p.died and p is not self and p.ended_at is not None),
                      key=lambda p: p.ended_at or 0.0)
        first = dead[0] if dead and (not self.died or (dead[0].ended_at or 0) < (self.ended_at or 0)) else None
        if first is None:
            return ProgramFailed(self.name, self.device.name, message, _trim(self.tail(), FAILURE_FIRST_LINES))
        tail = _trim(first.tail(), FAILURE_FIRST_LINES)
        for other in [self, *(p for p in dead if p is not first)]:
            tail.append(f"--- then program {other.name!r} on device {other.device.name!r} "
                        f"{message if other is self else other._describe_exit()} ---")
            tail += _trim(other.tail(), FAILURE_OTHER_LINES)
        return ProgramFailed(first.name, first.device.name,
                             f"{first._describe_exit()} (the first of this test's programs to die)", tail)

    def _await_end(self, timeout: float | None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._finished, timeout)

    def _describe_exit(self) -> str:
        if self.exit_signal:
            try:
                name = f" ({signal.Signals(self.exit_signal).name})"
            except ValueError:
                name = ""
            return f"was killed by signal {self.exit_signal}{name}"
        return f"exited with code {self.exit_code}"

    def wait_ready(self, timeout: float) -> "Program":
        """Block until the readiness rule holds; fail fast if the program dies first."""
        if not self.ready_within(timeout):
            raise self._not_ready(timeout)
        return self

    def ready_within(self, timeout: float) -> bool:
        """True once the readiness rule holds, False if not within ``timeout`` s;
        raises ProgramFailed if the program ends first."""
        deadline = time.monotonic() + timeout
        port_rule = self._ready_rule if isinstance(self._ready_rule, Port) else None
        while True:
            if port_rule is not None and not self._ready and _port_open(self.address, port_rule.port):
                with self._cond:
                    self._ready = True
            with self._cond:
                if self._ready:
                    return True
                if self._finished:
                    raise self._failure(f"{self._describe_exit()} before it was ready")
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1 if port_rule else left))

    def _not_ready(self, timeout: float) -> "ProgramFailed | TransportError":
        return self._failure(f"not ready after {timeout:g} s ({self._describe_rule()})")

    def _describe_rule(self) -> str:
        if isinstance(self._ready_rule, Port):
            return f"waiting for TCP port {self._ready_rule.port} on {self.address}"
        pattern = self._ready_rule.pattern if self._ready_rule is not None else None
        return f"waiting for an output line matching {pattern!r}"

    def wait(self, timeout: float | None = None, *, check: bool = True) -> int | None:
        """Wait for the program to end; by default a non-zero exit raises ProgramFailed."""
        if not self._await_end(timeout):
            raise self._failure(f"still running after {timeout:g} s")
        if check and (self.exit_code != 0 or self.exit_signal) and not self._stopped:
            raise self._failure(self._describe_exit())
        return self.exit_code

    def kill(self) -> None:
        """Kill the program's whole tree at once, as a crash would (its data is kept)."""
        if not self._finished:
            self._stopped = True
            self._spawned.kill()
            with self._cond:
                self._cond.wait_for(lambda: self._finished, 10.0)

    def stop(self, grace: float = 5.0) -> None:
        """End the program and its tree: graceful first, then hard. Keeps its data."""
        if self._finished:
            return
        self._stopped = True
        self._spawned.terminate()
        with self._cond:
            if self._cond.wait_for(lambda: self._finished, grace + 3.0):
                return
        self._spawned.kill()
        with self._cond:
            self._cond.wait_for(lambda: self._finished, 10.0)

    def __repr__(self) -> str:
        state = "finished" if self._finished else ("ready" if self._ready else "starting")
        return f"<Program {self.name} on {self.device.name} ({state})>"


def _trim(lines: list[str], keep: int) -> list[str]:
    """The last ``keep`` lines, each cut to FAILURE_LINE_CHARS."""
    return [line if len(line) <= FAILURE_LINE_CHARS else line[:FAILURE_LINE_CHARS] + " [...]"
            for line in lines[-keep:]]


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False
