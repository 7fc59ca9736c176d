"""Fixtures of the dashboard tests: a project with a finished run, a served dashboard, a browser.

The registry is the container tests' fixture (Debian's docker-registry on loopback),
loaded from tests/docker/conftest.py rather than written twice.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from dashboard_helpers import ROOT, TOKEN, free_port, make_project, run_finished, wait_port
from services import missing

_spec = importlib.util.spec_from_file_location("collab_docker_fixtures", ROOT / "tests" / "docker" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_docker_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_docker_fixtures)
registry = _docker_fixtures.registry

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("dashproject"))


@pytest.fixture(scope="session")
def reports(project: Path) -> Path:
    return project / "reports"


@pytest.fixture(scope="session")
def finished_run(project: Path, reports: Path) -> Path:
    return run_finished(project, reports)


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $COLLAB_DASHBOARD_SHOTS to keep them, else a temp folder."""
    folder = Path(os.environ.get("COLLAB_DASHBOARD_SHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def served(project: Path, reports: Path, registry) -> Iterator[str]:
    """``collab dashboard`` itself, in a subprocess, on a free loopback port."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "pytest_collab", "dashboard", "--lan", "dashlab",
                             "--port", str(port), "--reports-dir", str(reports), "--registry", registry.host,
                             "--token", TOKEN], cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium driven by Playwright (no browser download). Module-scoped: a
    running sync_playwright keeps an asyncio loop running in the main thread, which breaks
    every later test that runs a loop of its own (grpc.aio clients, other browser tests)."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        missing(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install playwright)")
    with sync_playwright() as play:
        chromium = play.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, served: str):
    """A fresh tab that opened the URL the dashboard printed (so it holds the token)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    tab.goto(f"{served}/?token={TOKEN}")
    yield tab
    context.close()
