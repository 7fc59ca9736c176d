"""Services the integration tests share, started once per session when not running.

Locally a missing service skips with the reason; under CI=true it fails the run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from pytest_collab.containers.engines import engine_available

SOCKET = Path("/var/run/docker.sock")


def missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """An answering engine: the running one, or a dockerd started for this session."""
    if engine_available():
        yield
        return
    if shutil.which("dockerd") is None or os.geteuid() != 0:
        missing("no docker engine and no dockerd to start (apt-get install docker.io; needs root)")
    log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["dockerd"], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not engine_available() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
    if not engine_available():
        proc.terminate()
        missing(f"dockerd did not come up; see {log}:\n{log.read_text()[-2000:]}")
    yield
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def docker_client(docker_engine: None):  # -> docker.DockerClient
    from pytest_collab.containers.engines import local_client

    client = local_client()
    yield client
    client.close()
