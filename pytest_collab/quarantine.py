"""Infrastructure failures: errors, not test failures, and a dead device set aside.

A device that could not be reached (connect, auth, host key) or whose link died is
quarantined for the rest of the session: every later test that needs it errors at once
with the first failure's reason, instead of paying the connect timeout again. Such
failures are pytest ERRORs naming the device: at setup (the devices are connected before
the test body runs) or, when the link dies while the test runs, reported as an error too.
State lives in ``config.stash`` (one book per process: each xdist worker keeps its own).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

import pytest

from pytest_collab.errors import TransportError

if TYPE_CHECKING:
    from pytest_collab.lan.profile import Device
    from pytest_collab.session import CollabSession

QUARANTINE = pytest.StashKey[dict[str, str]]()
LAB_PROBLEM = pytest.StashKey[str]()     # "" once the emulated lab was found up
INFRA = "collab_infra_error"             # user property naming the device


def book(config: pytest.Config) -> dict[str, str]:
    """device name -> why it is quarantined."""
    return config.stash.setdefault(QUARANTINE, {})


def _check_lab(session: "CollabSession") -> None:
    """The emulated lab is up on this engine: asked once per session, before any connection."""
    if not session.lan.emulated:
        return
    from pytest_collab.errors import CollabError
    from pytest_collab.labs.emulated import LabError
    from pytest_collab.labs.guard import check_up

    config = session.config
    if LAB_PROBLEM not in config.stash:
        try:
            try:
                check_up(session.lan)
            except LabError:
                if not session.settings.get("lab_up"):
                    raise
                _bring_up(session)
                check_up(session.lan)
            config.stash[LAB_PROBLEM] = ""
        except CollabError as exc:
            config.stash[LAB_PROBLEM] = str(exc)
    if config.stash[LAB_PROBLEM]:
        raise LabError(config.stash[LAB_PROBLEM])


def _bring_up(session: "CollabSession") -> None:
    """``--collab-lab-up``: ``collab lab up`` from the session, its progress on the terminal
    (past pytest's capture); one process at a time (xdist workers wait on a lock file)."""
    import fcntl

    from pytest_collab.labs.emulated import LabError, Settings, up
    from pytest_collab.labs.guard import check_up

    config = session.config
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")

    def progress(line: str) -> None:
        if reporter is None or capture is None:
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"collab lab up {session.lan.name}: {line}")

    home = Settings.of(session.lan).home
    home.mkdir(parents=True, exist_ok=True)
    with open(home / f"up-{session.lan.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            check_up(session.lan)      # another worker brought it up meanwhile
            return
        except LabError:
            pass
        progress("the lab is not up; bringing it up")
        up(session.lan, progress=progress)


def connect(session: "CollabSession", devices: Iterable["Device"], nodeid: str) -> list[Any]:
    """Connect every device a test needs before it runs; returns their runtimes.

    Raises at once for a quarantined device; the devices connect concurrently and each
    one that fails now is quarantined (the first in the test's order is raised).
    """
    _check_lab(session)
    devices = list(devices)
    held = book(session.config)
    for device in devices:
        if device.name in held:
            raise TransportError(device.name, f"quarantined for the rest of this session: {held[device.name]}")
    from pytest_collab.runtime.parallel import each

    def hold(device: "Device", exc: BaseException) -> None:
        if isinstance(exc, TransportError):
            reason = str(exc).removeprefix(f"device {device.name!r}: ")
            held[device.name] = f"{reason} (first failure: {nodeid})"

    # side by side: 8 SSH handshakes cost about one (every failing device is quarantined)
    return each(devices, session.runtime_for, name="collab-connect", on_error=hold)


def note_lost_links(config: pytest.Config, runtimes: Iterable[Any], nodeid: str) -> None:
    """After a test: a device whose link died during it is quarantined."""
    held = book(config)
    for runtime in runtimes:
        lost = getattr(getattr(runtime, "transport", None), "lost", None)
        if lost and runtime.device.name not in held:
            held[runtime.device.name] = f"{lost} (during {nodeid})"


class InfraErrors:
    """Registered by the plugin: a TransportError (or LabError) in a test body is an ERROR."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        report = outcome.get_result()
        from pytest_collab.labs.emulated import LabError

        exc = call.excinfo.value if call.excinfo is not None else None
        if report.when == "call" and report.failed and isinstance(exc, (TransportError, LabError)):
            report.user_properties.append((INFRA, getattr(exc, "device", "lab")))

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        if getattr(report, "when", None) == "call" and report.failed and any(
                name == INFRA for name, _ in getattr(report, "user_properties", ())):
            return "error", "E", ("ERROR", {"red": True})
        return None
