"""Session fixtures for the container tests: a docker engine, a registry, a bootstrap base.

Each is reused when already running and started (then stopped) otherwise. Under CI=true a
missing engine or registry binary fails the run; locally it skips with the reason.
"""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from services import missing

@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory):  # -> RegistryServer
    """Debian's docker-registry on 127.0.0.1 and a free port, for this session only."""
    from pytest_collab.containers.registry import free_port, serve

    if shutil.which("docker-registry") is None:
        missing("docker-registry is not installed (apt-get install docker-registry)")
    server = serve(tmp_path_factory.mktemp("registry"), free_port())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    """A bootstrap base (debootstrap once, the tarball cached under ~/.cache/pytest-collab)."""
    from pytest_collab.containers.bootstrap import bootstrap

    if shutil.which("debootstrap") is None:
        missing("debootstrap is not installed (apt-get install debootstrap)")
    return bootstrap("amd64", client=docker_client, progress=lambda line: None)


@pytest.fixture(scope="session")
def session_token(docker_client) -> Iterator[str]:
    """A token in every test case name, so the session's images are removed at its end."""
    token = uuid.uuid4().hex[:6]
    yield token
    for image in docker_client.images.list():
        for tag in image.tags:
            if token in tag:
                docker_client.images.remove(tag, force=True, noprune=False)


@pytest.fixture
def testcase(tmp_path: Path, session_token: str, request: pytest.FixtureRequest) -> Path:
    """A tiny experiment folder (no torch): one script printing a line."""
    name = f"tc-{session_token}-{request.node.name[5:25]}".replace("[", "-").rstrip("]")
    folder = tmp_path / name
    folder.mkdir()
    (folder / "main.py").write_text("print('hello from the experiment')\n")
    return folder
