"""What happened to a test, as ``run.json`` states it (the outcome contract, docs/internal-api.md).

pytest's own reports say ``passed``/``failed``/``skipped`` per phase; a reader of a run
needs one word per test that is true: ``error`` when setup or teardown broke (the
experiment never ran or its clean-up failed), ``interrupted`` when Ctrl-C or SIGTERM
ended the session while the test ran (pytest makes no report for that phase at all, so
a test that started and never finished is interrupted by definition). Pure functions:
the plugin feeds them reports, the tests feed them anything.
"""
from __future__ import annotations

from typing import Any

OUTCOMES = ("passed", "failed", "error", "skipped", "interrupted")
REASON_LINES = 15


def trim(text: str, lines: int = REASON_LINES) -> str:
    """The first ``lines`` lines of ``text``, with a note of how many were cut."""
    rows = str(text).rstrip().splitlines()
    if len(rows) <= lines:
        return "\n".join(rows)
    return "\n".join([*rows[:lines], f"... ({len(rows) - lines} more lines in the log)"])


def reason_of(report: Any) -> str:
    """A skip's reason, or the failure text of a report (its longrepr), trimmed."""
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and len(longrepr) == 3:
        text = str(longrepr[2])
        return text[len("Skipped: "):] if text.startswith("Skipped: ") else text
    crash = getattr(getattr(longrepr, "reprcrash", None), "message", None)
    full = str(longrepr) if longrepr is not None else ""
    if crash and crash not in full[:2000]:
        full = f"{crash}\n{full}"
    return trim(full)


def apply_report(info: dict[str, Any], report: Any) -> None:
    """Fold one phase's report into the test's ``run.json`` entry (``outcome``, ``reason``).

    The first bad phase decides: a failed call stays ``failed`` even if teardown then
    broke too; a passed call followed by a broken teardown is an ``error``.
    """
    when, previous = report.when, info.get("outcome")
    if previous in ("failed", "error", "skipped") and when != "setup":
        return
    if report.passed:
        if when == "call" or previous is None:
            info["outcome"] = "passed"
            info.pop("reason", None)
        return
    if report.skipped:
        info["outcome"] = "skipped"
    elif when == "call":
        info["outcome"] = "failed"
    else:
        info["outcome"] = "error"
    info["reason"] = reason_of(report)


def mark_interrupted(info: dict[str, Any], why: str) -> None:
    """A test that started and never got its last report: the session was interrupted."""
    info["outcome"] = "interrupted"
    info["reason"] = trim(why)


def interrupt_reason(excinfo: Any) -> str:
    """``KeyboardInterrupt: SIGTERM (signal 15)`` and where the test was when it came."""
    text = excinfo.exconly()
    if text.strip() == "KeyboardInterrupt":
        text = "KeyboardInterrupt (Ctrl-C)"
    for entry in reversed(list(getattr(excinfo, "traceback", []))):
        if "pytest_collab" not in str(entry.path):  # not the signal handler: the test's line
            text += f" at {entry.path}:{entry.lineno + 1}"
            break
    return text
