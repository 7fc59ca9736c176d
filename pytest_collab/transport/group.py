"""One action over many devices in parallel: one result per device, whatever happens.

Like Fabric's ``Group``, but a stuck device can not hold the others hostage: each
device gets its own deadline, a worker stuck past it is abandoned (daemon thread) and
replaced, and the device's result says it gave no answer. ``GroupError`` carries every
result, so a caller that raises still shows what the good devices said.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterable, TypeVar

from pytest_collab.errors import CollabError
from pytest_collab.transport.base import CommandResult

if TYPE_CHECKING:
    from pytest_collab.lan.profile import Device

T = TypeVar("T")
DEFAULT_WORKERS = 16


@dataclass
class Outcome(Generic[T]):
    """What ``fn(device)`` returned, or why it did not."""

    device: str
    value: T | None = None
    error: str | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class GroupError(CollabError):
    """Some devices failed; ``results`` holds every device's result (good ones too)."""

    def __init__(self, results: dict[str, Any], failed: list[str]) -> None:
        self.results = results
        self.failed = failed
        details = []
        for name in failed:
            res = results[name]
            why = getattr(res, "error", None) or f"exit {getattr(res, 'exit_code', '?')}"
            details.append(f"{name}: {why}")
        super().__init__(f"{len(failed)} of {len(results)} devices failed: " + "; ".join(details))


def map_devices(devices: Iterable["Device"], fn: Callable[["Device"], T], *,
                timeout: float, workers: int = DEFAULT_WORKERS) -> dict[str, Outcome[T]]:
    """Call ``fn(device)`` for every device, at most ``workers`` at a time.

    Each call gets ``timeout`` seconds from the moment it starts; the result dict keeps
    the devices' order and always has one entry per device.
    """
    devices = list(devices)
    outcomes: dict[str, Outcome[T]] = {}
    lock = threading.Condition()
    pending = list(reversed(devices))
    started: dict[str, float] = {}
    abandoned: set[str] = set()       # devices whose worker was replaced after the deadline

    def finish(name: str, outcome: Outcome[T]) -> None:
        with lock:
            if name not in outcomes:          # a late answer after its deadline is dropped
                outcomes[name] = outcome
            lock.notify_all()

    def worker() -> None:
        while True:
            with lock:
                if not pending:
                    return
                device = pending.pop()
                started[device.name] = time.monotonic()
            t0 = time.monotonic()
            try:
                outcome = Outcome(device.name, value=fn(device))
            except Exception as exc:   # noqa: BLE001 - one device's failure is its result
                outcome = Outcome(device.name, error=str(exc) or type(exc).__name__)
            outcome.duration_s = time.monotonic() - t0
            finish(device.name, outcome)
            with lock:
                if device.name in abandoned:
                    return                    # a replacement took this worker's place

    def spawn() -> None:
        threading.Thread(target=worker, daemon=True, name="collab-group").start()

    for _ in range(min(workers, len(devices)) or 0):
        spawn()
    with lock:
        while len(outcomes) < len(devices):
            now = time.monotonic()
            for name, t0 in list(started.items()):
                if name not in outcomes and now - t0 > timeout:
                    outcomes[name] = Outcome(name, error=f"no answer within {timeout:g}s",
                                             duration_s=now - t0)
                    abandoned.add(name)
                    spawn()
            lock.wait(0.05)
    return {d.name: outcomes[d.name] for d in devices}


def run_group(devices: Iterable["Device"], command: str, *, timeout: float = 60,
              connect: Callable[["Device"], Any] | None = None, check: bool = False,
              workers: int = DEFAULT_WORKERS, **options: Any) -> dict[str, CommandResult]:
    """Run ``command`` on every device; one ``CommandResult`` per device.

    ``connect`` defaults to ``transport.get_transport`` (``options`` go to it). The
    per-device deadline covers connecting (with its retries) and the command.
    ``check=True`` raises ``GroupError`` (with all results) when any device failed.
    """
    if connect is None:
        from pytest_collab.transport import get_transport

        def connect(device: "Device") -> Any:
            return get_transport(device, **options)

    def one(device: "Device") -> CommandResult:
        transport = connect(device)
        try:
            return transport.run(command, timeout=timeout)
        finally:
            transport.close()

    devices = list(devices)
    budget = timeout + max((_connect_budget(d) for d in devices), default=0)
    results: dict[str, CommandResult] = {}
    for name, outcome in map_devices(devices, one, timeout=budget, workers=workers).items():
        results[name] = outcome.value if outcome.value is not None else CommandResult(
            device=name, command=command, error=outcome.error, duration_s=outcome.duration_s)
    failed = [n for n, r in results.items() if not r.ok]
    if check and failed:
        raise GroupError(results, failed)
    return results


def _connect_budget(device: "Device") -> float:
    """Time a connect may take: three attempts (two retries) plus backoff and margin."""
    per_try = device.ssh.connect_timeout if device.ssh is not None else 5.0
    return 3 * per_try + 5


def format_results(results: dict[str, CommandResult]) -> str:
    """Human text: a header per device, then its output or its error."""
    blocks = []
    for name, res in results.items():
        status = "ok" if res.ok else (res.error or f"exit {res.exit_code}")
        block = [f"== {name} [{status}] {res.duration_s:.2f}s"]
        if res.stdout.strip():
            block.append(res.stdout.rstrip())
        if res.stderr.strip():
            block.append("stderr: " + res.stderr.rstrip())
        blocks.append("\n".join(block))
    return "\n".join(blocks)
