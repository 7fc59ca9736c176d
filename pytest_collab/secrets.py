"""Secret values: never on a remote command line, and ``***`` in everything a run writes.

A profile names the environment variables whose values are secret (``secret_env:``,
docs/profiles.md). Their values are learnt from the controller's environment at the
start of the session and from every ``collab.start(env=...)``; from then on they are
replaced by ``***`` in program logs (``.log``, ``.jsonl``), recorded results (Parquet),
what ``run.json`` keeps of a test, and pytest's reports (terminal, JUnit). Over SSH the
values travel on the channel's stdin (``transport/ssh.py``), not in ``ps``.
State lives in ``config.stash``; each xdist worker redacts what it writes.
"""
from __future__ import annotations

import json
import os
import threading
import warnings
from typing import Any, Iterable, Mapping

import pytest

from pytest_collab.errors import CollabWarning

MASK = "***"
MIN_LENGTH = 4   # shorter values would mask ordinary numbers and words everywhere
_KEY = pytest.StashKey["Redactor"]()


class Redactor:
    """Replaces every known secret value (and its JSON-escaped form) with ``***``."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)
        self._forms: list[str] = []
        self._lock = threading.Lock()

    def learn(self, env: Mapping[str, Any]) -> None:
        """Remember the values of the secret names in ``env``."""
        for name, value in env.items():
            if name not in self.names or value is None or str(value) == "":
                continue
            text = str(value)
            if len(text) < MIN_LENGTH:
                warnings.warn(CollabWarning(f"secret {name} is shorter than {MIN_LENGTH} characters "
                                            f"and is not redacted from the run's files"), stacklevel=3)
                continue
            with self._lock:
                for form in (text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]):
                    if form not in self._forms:
                        self._forms.append(form)
                self._forms.sort(key=len, reverse=True)   # the longest first: no partial leftovers

    def __bool__(self) -> bool:
        return bool(self._forms)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def value(self, obj: Any) -> Any:
        """``obj`` with every string inside (dicts, lists, tuples) redacted."""
        if isinstance(obj, str):
            return self(obj)
        if isinstance(obj, dict):
            return {k: self.value(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.value(v) for v in obj)
        return obj


def redactor(config: pytest.Config, names: Iterable[str] = ()) -> Redactor:
    """The session's redactor; made on first use from the profile's names and os.environ."""
    found = config.stash.get(_KEY, None)
    if found is None:
        found = config.stash[_KEY] = Redactor(names)
        found.learn(os.environ)
    return found


class RedactReports:
    """Registered by the plugin: pytest's own reports (terminal, JUnit) carry no secret."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        redact_report(self.config, outcome.get_result())


def redact_report(config: pytest.Config, report: Any) -> None:
    """A test report with the session's secrets replaced (idempotent): before anything
    records it (run.json's reason) and before pytest prints it."""
    redact = config.stash.get(_KEY, None)
    if redact:
        if report.longrepr is not None:
            text = str(report.longrepr)
            if redact(text) != text:
                report.longrepr = redact(text)
        report.sections = [(title, redact(content)) for title, content in report.sections]
        report.user_properties = [(k, redact.value(v)) for k, v in report.user_properties]
