"""pytest-collab's pytest plugin: it registers, the other modules do the work.

Loading this module imports only pytest and the light option/error modules; the profile
is read in ``pytest_configure``, and pyarrow, the wrapper and the report are imported
only when a test actually uses the lab.
"""
from __future__ import annotations

import signal
import threading
from typing import Any

import pytest

from pytest_collab import options
from pytest_collab.errors import CollabError
from pytest_collab.fixtures import collab, collab_devices, collab_lan  # noqa: F401  (registers the fixtures)
from pytest_collab.options import RunOptions
from pytest_collab.session import SESSION_KEY, CollabSession, get_session

DEVICES_HELP = (
    "devices(**kinds, tags=[...]): run this experiment on devices of the LAN profile, "
    "e.g. devices(jetson=2, rpi=1). A name matches a device's kind or one of its tags; "
    "tags= requires every listed tag. A constraint the profile can never meet skips the "
    "test (an error with --collab-strict-devices)."
)
_SETUP_ERROR = pytest.StashKey[str]()
_OLD_SIGTERM = pytest.StashKey[Any]()
_REPLAY = pytest.StashKey[Any]()
_BEFORE_CONFTESTS = pytest.StashKey[set]()  # option dests of pytest and plugins, not experiments


@pytest.fixture(scope="session")
def collab_options(request: pytest.FixtureRequest) -> RunOptions:
    """The run's resolved options and lab: ``collab_options["lan"]``, ``["link_sizes"]``, ``.lan``.

    Hooks without fixtures use ``pytest_collab.session.collab_options_of(config)``: the same object.
    """
    return get_session(request.config).options


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_to_pytest(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> None:
    """Note which options exist before conftests (the rest are experiment options, recorded in
    run.json); ``--collab-replay``: unpack the bundle's test case before conftests load, select its tests."""
    import os

    early_config.stash[_BEFORE_CONFTESTS] = set(options.declared_options(parser))
    bundle = getattr(early_config.known_args_namespace, "replay", None) or os.environ.get(
        options.BY_NAME["replay"].env)
    if not bundle or os.environ.get("PYTEST_XDIST_WORKER"):
        return  # workers get the controller's arguments
    from pathlib import Path

    from pytest_collab.share.replay import prepare_replay

    try:
        plan = prepare_replay(Path(bundle), early_config.rootpath)
    except CollabError as exc:
        raise pytest.UsageError(str(exc)) from None
    # After ini/PYTEST_ADDOPTS options (the baseline's values beat this machine's defaults),
    # before the command line's own flags (a user's explicit flag still wins).
    cmdline = [str(a) for a in early_config.invocation_params.args]
    at = len(args) - len(cmdline) if cmdline and args[len(args) - len(cmdline):] == cmdline else 0
    args[at:at] = plan.option_args
    if not early_config.known_args_namespace.file_or_dir:
        args.extend(plan.node_ids)
    early_config.stash[_REPLAY] = plan


def _raise_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM takes the Ctrl-C path, so fixture teardown stops every device program."""
    raise KeyboardInterrupt(f"SIGTERM (signal {signum})")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", DEVICES_HELP)
    from pytest_collab.lan.profile import load_profile

    try:
        settings = options.resolve_from_pytest(config)
        lan = load_profile(str(settings["lan"]), config.rootpath)
    except CollabError as exc:
        raise pytest.UsageError(str(exc)) from None
    before = config.stash.get(_BEFORE_CONFTESTS, set())
    experiment = options.experiment_options(config, before)
    dests = options.experiment_dests(config, before)
    session = config.stash[SESSION_KEY] = CollabSession(config, settings, lan, experiment, dests)
    try:
        removed = session.sweep_containers()
        if removed:
            session.summary.append(f"collab: swept {len(removed)} leftover container(s) of crashed runs")
    except CollabError as exc:
        session.summary.append(f"collab: could not sweep leftover containers: {exc}")
    from pytest_collab.quarantine import InfraErrors
    from pytest_collab.secrets import RedactReports, redactor

    redactor(config, lan.secret_env)
    config.pluginmanager.register(InfraErrors(), "collab-infra-errors")
    config.pluginmanager.register(RedactReports(config), "collab-redact-reports")
    config.pluginmanager.register(InterruptWatch(session), "collab-interrupts")
    if session.is_controller:
        from pytest_collab.results.recover import unfinished_runs

        for run in unfinished_runs(session.run_path.parent)[-3:]:
            session.summary.append(f"collab: run {run.name} did not finish (its controller died); "
                                   f"`collab recover {run}` rebuilds its tables")
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(XdistController(session), "collab-xdist")
    from pytest_collab.report.pytest_output import register as register_output

    register_output(config)  # JUnit properties, pytest-html extras
    if threading.current_thread() is threading.main_thread():
        config.stash[_OLD_SIGTERM] = signal.signal(signal.SIGTERM, _raise_interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.kill_live_programs()
    old = config.stash.get(_OLD_SIGTERM, None)
    if old is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, old)


def pytest_report_header(config: pytest.Config) -> list[str]:
    session = get_session(config)
    lan = session.lan
    kinds = ", ".join(f"{d.name} ({d.kind})" for d in lan.devices)
    where = f" from {lan.path}" if lan.path else ""
    return [f"collab: LAN {lan.name!r}{where}: {len(lan.devices)} device(s): {kinds}",
            f"collab: run folder {session.run_path}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip (or, strict, fail) tests whose devices constraint the profile can never meet."""
    from pytest_collab.select import constraint_from_marker, unsatisfiable_reason

    session = get_session(config)
    for item in items:
        marker = item.get_closest_marker("devices")
        if marker is None:
            continue
        try:
            reason = unsatisfiable_reason(session.lan, constraint_from_marker(marker.args, marker.kwargs))
        except CollabError as exc:
            item.stash[_SETUP_ERROR] = str(exc)
            continue
        if reason is None:
            continue
        if session.settings["strict_devices"]:
            item.stash[_SETUP_ERROR] = reason
        else:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(tryfirst=True)
def pytest_collectstart(collector: pytest.Collector) -> None:
    """A test module's helper modules come from its own folder (see :mod:`pytest_collab.testcase`)."""
    if isinstance(collector, pytest.Module):
        from pytest_collab.testcase import isolate

        isolate(collector.path.parent)


def pytest_runtest_setup(item: pytest.Item) -> None:
    from pytest_collab.testcase import isolate

    isolate(item.path.parent)  # helpers imported lazily inside a test, too
    session = item.config.stash.get(SESSION_KEY, None)
    if session is not None and "collab" in getattr(item, "fixturenames", ()) \
            and not item.config.option.setupplan:
        session.test_started(item.nodeid)
    problem = item.stash.get(_SETUP_ERROR, None)
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    report = outcome.get_result()
    if isinstance(call.excinfo, pytest.ExceptionInfo) and isinstance(call.excinfo.value, CollabError):
        report.longrepr = f"{type(call.excinfo.value).__name__}: {call.excinfo.value}"
    session = item.config.stash.get(SESSION_KEY, None)
    if session is None or "collab" not in getattr(item, "fixturenames", ()):
        return
    lost = session.test_info(item.nodeid).get("lease_lost")
    if lost and report.when == "call" and report.passed:  # it ran on a device it no longer held
        report.outcome = "failed"
        report.longrepr = f"LeaseLost: {lost}"
    from pytest_collab.secrets import redact_report

    redact_report(item.config, report)  # run.json's reason never holds a secret
    session.ledger.report(item.nodeid, report)


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(SESSION_KEY, None)
    if state is None:
        return
    state.kill_live_programs()
    state.ledger.mark_unfinished()
    state.close_writers()
    if not state.is_controller:
        return
    try:
        state.summary.extend(state.finish_controller())
        state.sweep_containers(this_run=True)
    except CollabError as exc:
        state.summary.append(f"collab: could not finish the run: {exc}")
    plan = session.config.stash.get(_REPLAY, None)
    if plan is not None:
        _finish_replay(session, state, plan)


def _finish_replay(session: pytest.Session, state: CollabSession, plan: Any) -> None:
    """Compare the fresh run with the bundle's baseline; a regression fails the session."""
    from pytest_collab.share.replay import finish_replay, replay_lines

    try:
        if not state.used:
            raise CollabError("the replay ran no experiment, so there is nothing to compare")
        outcome = finish_replay(plan, state.run_dir.root)
    except CollabError as exc:
        state.summary.append(f"collab replay: could not compare: {exc}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    state.summary.extend(replay_lines(outcome))
    if state.settings["report"] == "html":
        from pytest_collab.report import render_report

        render_report(state.run_dir.root)  # again, now with the replay section
    if not outcome.passed and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(SESSION_KEY, None)
    lines = getattr(state, "summary", None)
    if lines:
        terminalreporter.section("collab")
        for line in lines:
            terminalreporter.write_line(line, red="FAIL" in line or "could not" in line)
    if state is not None and state.is_controller:
        from pytest_collab.report.terminal import terminal_summary

        terminal_summary(terminalreporter, state.run_path)  # each experiment's headline table


class InterruptWatch:
    """Ctrl-C or SIGTERM: remember why, so the tests it cut short say so in run.json.

    A registered object because ``pytest_keyboard_interrupt`` gets no config to stash in.
    """

    def __init__(self, session: CollabSession) -> None:
        self.session = session

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        from pytest_collab.results.outcomes import interrupt_reason

        self.session.ledger.interrupted = interrupt_reason(excinfo)


class XdistController:
    """Only on the controller under pytest-xdist: hand the run folder out, take tests back."""

    def __init__(self, session: CollabSession) -> None:
        self.session = session

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        session = get_session(node.config)
        session.run_dir  # noqa: B018  (the folder must exist before workers write parts)
        node.workerinput["collab_run_id"] = session.run_id
        node.workerinput["collab_run_path"] = str(session.run_path)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """A worker's report carries its test's run.json entry; a crashed worker's says so."""
        self.session.ledger.merge(report)
