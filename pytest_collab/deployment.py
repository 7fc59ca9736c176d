"""The programs of one test: started in order (``after=``), several side by side, always stopped.

``start`` launches one program; ``start_many`` launches several at once, one thread per
program (:func:`pytest_collab.runtime.parallel.each`), because each launch mostly waits
on a device (an SSH exec round trip, an image check, a container create and start):
one after the other, 8 devices cost 8 launches; side by side, about the slowest one.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from pytest_collab.deploy import Program, Ready
from pytest_collab.errors import DeployError

if TYPE_CHECKING:
    from pytest_collab.lan.profile import Device

#: how often a wait on several programs looks at the others (a death among them fails the
#: wait at once instead of after the one being waited on); readiness itself wakes at once
PEER_CHECK_S = 0.1


@dataclass(frozen=True)
class StartSpec:
    """One program to start with :meth:`Deployment.start_many` (``collab.spec(...)``)."""

    target: "str | Device"
    program: str
    args: tuple[Any, ...] = ()
    ready: Ready = None
    env: Mapping[str, str] | None = None
    name: str | None = None


class Deployment:
    """The programs of one test, started in order and always stopped.

    ``launcher(**spec) -> Program`` may run on several threads at once (``start_many``);
    ``on_launched(program)`` runs on the caller's thread, in the order the programs were
    asked for (bookkeeping: run.json, the live view).
    """

    def __init__(self, ready_timeout: float, launcher: Callable[..., Program],
                 on_launched: Callable[[Program], None] | None = None) -> None:
        self.ready_timeout = ready_timeout
        self.programs: list[Program] = []
        self._launcher = launcher
        self._on_launched = on_launched

    def _adopt(self, program: Program) -> None:
        self.programs.append(program)
        program.peers = self.programs   # one shared list: a failure names who died first
        if self._on_launched is not None:
            self._on_launched(program)

    def start(self, *, after: "Program | Sequence[Program] | None" = None,
              ready_timeout: float | None = None, wait: bool = True, **spec: Any) -> Program:
        """Launch once every ``after`` program is ready; with ``wait``, return once this one is."""
        timeout = ready_timeout or self.ready_timeout
        for earlier in _as_list(after):
            earlier.wait_ready(timeout)
        program = self._launcher(**spec)
        self._adopt(program)
        if wait:
            program.wait_ready(timeout)
        return program

    def start_many(self, specs: Sequence[dict[str, Any]], *,
                   after: "Program | Sequence[Program] | None" = None,
                   ready_timeout: float | None = None, wait: bool = True) -> list[Program]:
        """Launch every spec side by side once every ``after`` program is ready; with
        ``wait``, return once all are ready (the first to die fails the wait at once).

        A launch that fails does not orphan the others: every program that did start is
        kept (and stopped at teardown), then the first failure in ``specs`` order is raised.
        """
        from pytest_collab.runtime.parallel import each

        timeout = ready_timeout or self.ready_timeout
        for earlier in _as_list(after):
            earlier.wait_ready(timeout)
        launched: list[Program | None] = [None] * len(specs)

        def launch(index: int) -> Program:
            launched[index] = program = self._launcher(**specs[index])
            return program

        try:
            each(range(len(specs)), launch, name="collab-start")
        finally:
            for program in launched:
                if program is not None:
                    self._adopt(program)
        programs = [p for p in launched if p is not None]
        if wait:
            wait_all_ready(programs, timeout)
        return programs

    def stop_all(self) -> list[str]:
        """Stop every program, newest first; return problems instead of raising."""
        problems = []
        for program in reversed(self.programs):
            try:
                program.stop()
            except Exception as exc:  # teardown must reach every program
                problems.append(f"{program!r}: {exc}")
        return problems


def wait_all_ready(programs: Sequence[Program], timeout: float) -> None:
    """Block until every program is ready; one that ends before it is ready fails the wait
    at once (not after the program being waited on), as does the timeout."""
    deadline = time.monotonic() + timeout
    for program in programs:
        while True:
            for other in programs:
                if other.finished and not other.ready:
                    other.wait_ready(0)     # raises: exited ... before it was ready
            left = deadline - time.monotonic()
            if program.ready_within(max(0.0, min(left, PEER_CHECK_S))):
                break
            if left <= PEER_CHECK_S:
                raise program._not_ready(timeout)


def _as_list(after: "Program | Sequence[Program] | None") -> list[Program]:
    if after is None:
        return []
    if isinstance(after, Program):
        return [after]
    for item in after:
        if not isinstance(item, Program):
            raise DeployError(f"after= takes Program objects returned by collab.start(), got {item!r}")
    return list(after)
