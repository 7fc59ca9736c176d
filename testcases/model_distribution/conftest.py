"""model_distribution: the lab registry (on the controller), the exporter, the device matrix.

The registry is ``--collab-registry`` when given, else Debian's docker-registry started for
the session on the profile's controller address (the emulated lab's bridge gateway, so the
devices reach it; loopback on the local lab) and stopped at the end.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

import deploy_model


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cache" not in metafunc.fixturenames:
        return
    n = metafunc.config.getoption("md_devices")
    metafunc.parametrize("cache", [pytest.param(c, marks=pytest.mark.devices(edge=n), id=c)
                                   for c in ("miss", "hit")])


@pytest.fixture(scope="session")
def md_registry(collab_lan, request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with deploy_model.lab_registry(collab_lan, request.config, tmp_path_factory.mktemp("md-registry")) as url:
        yield url


@pytest.fixture(scope="session")
def md_build(tmp_path_factory: pytest.TempPathFactory):
    return deploy_model.exporter(Path(tmp_path_factory.mktemp("md-export")))
