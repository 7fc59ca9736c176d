"""The emulated lab, brought up once per session and down at its end.

Under CI=true a missing docker engine (or ssh-keygen) fails the run; locally it skips.
A lab that was already up (``collab lab up emulated``) is reused and left up.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from services import missing

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def lab_client(docker_engine: None):  # -> docker.DockerClient
    if shutil.which("ssh-keygen") is None:
        missing("ssh-keygen is missing (apt-get install openssh-client)")
    from pytest_collab.containers.engines import local_client

    client = local_client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def lab(lab_client) -> Iterator["object"]:
    """The ``emulated`` profile's LAN with every device up."""
    from pytest_collab.labs import down, status, up
    from pytest_collab.lan.profile import load_profile

    lan = load_profile("emulated", ROOT)
    was_up = all(s == "running" for s in status(lan, client=lab_client).values())
    up(lan, client=lab_client, progress=lambda line: None)
    yield lan
    if not was_up:
        down(lan, client=lab_client, progress=lambda line: None)


@pytest.fixture(scope="session")
def device_image(lab, lab_client) -> str:
    """The emulated devices' image tag (already built by ``lab``)."""
    from pytest_collab.labs.emulated import container_name

    return lab_client.containers.get(container_name(lab, lab.devices[0])).image.tags[0]

