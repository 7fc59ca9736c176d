"""Each test's outcome as run.json records it, with the reason a person needs first.

``run.json`` → ``tests[<nodeid>]`` carries ``outcome`` (passed, failed, error, skipped,
interrupted), ``reason`` (the first lines of the failure), ``program`` (name, device and
signal of the program that failed first), ``lease_wait_s`` and ``logs`` (the test's log
folder, relative to the run folder). Older runs lack some of these: the outcome is then
"unknown" and the log folder is looked up where the run folder keeps it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUTCOMES = ("passed", "failed", "error", "skipped", "interrupted")
PROBLEMS = ("failed", "error", "interrupted")
REASON_LINES = 15


def short_test(nodeid: str) -> str:
    """``path/test_x.py::test_x[a]`` → ``test_x[a]``."""
    return str(nodeid).rsplit("::", 1)[-1]


def test_label(nodeid: str) -> str:
    """The shortest name that tells tests of one experiment apart: the parameter id
    (``resnet18-layer1-fp32``), or the function name when there is none."""
    short = short_test(nodeid)
    return short[short.index("[") + 1:-1] if short.endswith("]") and "[" in short else short


@dataclass
class TestOutcome:
    nodeid: str
    testcase: str
    outcome: str
    reason: str = ""
    program: str = ""
    duration_s: float | None = None
    lease_wait_s: float | None = None
    devices: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)   # log files, relative to the run folder

    @property
    def short(self) -> str:
        return short_test(self.nodeid)

    @property
    def is_problem(self) -> bool:
        return self.outcome in PROBLEMS

    @property
    def own_duration_s(self) -> float | None:
        """The test's own time: pytest's duration (setup + call + teardown) less the
        time its setup spent waiting for a device lease."""
        if self.duration_s is None:
            return None
        return max(0.0, self.duration_s - (self.lease_wait_s or 0.0))


def describe_program(program: Any) -> str:
    """``tail_server.py on server-1 (signal 9)`` from the contract's mapping (or text)."""
    if not program:
        return ""
    if not isinstance(program, Mapping):
        return str(program)
    text = str(program.get("name") or "a program")
    if program.get("device"):
        text += f" on {program['device']}"
    extra = [f"signal {program['signal']}" if program.get("signal") is not None else "",
             f"exit code {program['exit_code']}" if program.get("exit_code") is not None else ""]
    extra = [e for e in extra if e]
    return f"{text} ({', '.join(extra)})" if extra else text


def _reason(text: Any) -> str:
    lines = str(text or "").strip("\n").splitlines()
    if len(lines) > REASON_LINES:
        lines = [*lines[:REASON_LINES], f"... ({len(lines) - REASON_LINES} more lines in the logs)"]
    return "\n".join(lines)


def _log_files(root: Path | None, nodeid: str, logs: Any) -> list[str]:
    if root is None:
        return []
    from pytest_collab.results.rundir import slug

    folder = root / (str(logs) if logs else f"logs/{slug(nodeid)}")
    if not folder.is_dir():
        return []
    return [str(p.relative_to(root)) for p in sorted(folder.iterdir()) if p.suffix == ".log"]


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def test_outcomes(info: Mapping[str, Any], root: Path | None = None) -> list[TestOutcome]:
    """Every test of the run, in run.json's order."""
    out = []
    for nodeid, test in (info.get("tests") or {}).items():
        outcome = str(test.get("outcome") or "unknown")
        devices = test.get("selection") or "; ".join(
            f"{want}: {', '.join(names)}" for want, names in (test.get("devices") or {}).items())
        out.append(TestOutcome(
            nodeid=nodeid, testcase=str(test.get("testcase") or ""), outcome=outcome,
            reason=_reason(test.get("reason")) if outcome != "passed" else "",
            program=describe_program(test.get("program")),
            duration_s=_float(test.get("duration_s")), lease_wait_s=_float(test.get("lease_wait_s")),
            devices=str(devices), params=dict(test.get("params") or {}),
            logs=_log_files(root, nodeid, test.get("logs"))))
    return out


def counts(outcomes: list[TestOutcome]) -> dict[str, int]:
    """How many tests ended each way, in a fixed order (zeros left out)."""
    found: dict[str, int] = {}
    for o in outcomes:
        found[o.outcome] = found.get(o.outcome, 0) + 1
    order = [*OUTCOMES, *sorted(set(found) - set(OUTCOMES))]
    return {k: found[k] for k in order if k in found}
