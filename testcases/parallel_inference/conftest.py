"""parallel_inference: the N matrix (``--pi-devices``) and the model's distribution.

The model reaches the devices exactly as in model_distribution: that experiment's
``deploy_model.py`` is loaded by path (one implementation, not a copy). N devices are
edge devices first, then servers when the profile has fewer edge devices than N.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Iterator

import pytest

_path = Path(__file__).resolve().parents[1] / "model_distribution" / "deploy_model.py"
_spec = importlib.util.spec_from_file_location("collab_md_deploy_model", _path)
assert _spec is not None and _spec.loader is not None
deploy_model = sys.modules.setdefault("collab_md_deploy_model", importlib.util.module_from_spec(_spec))
if not hasattr(deploy_model, "deploy"):
    _spec.loader.exec_module(deploy_model)


def devices_marker(lan, n: int) -> pytest.MarkDecorator:
    edge = sum(1 for d in lan.devices if d.matches("edge"))
    if n <= edge:
        return pytest.mark.devices(edge=n)
    return pytest.mark.devices(edge=edge, server=n - edge)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "n_devices" not in metafunc.fixturenames:
        return
    from pytest_collab.session import get_session

    raw = metafunc.config.getoption("pi_devices")
    try:
        counts = [int(n) for n in raw.split(",") if n.strip()]
    except ValueError:
        raise pytest.UsageError(f"--pi-devices {raw!r}: expected comma-separated counts, e.g. 1,2,4") from None
    lan = get_session(metafunc.config).lan
    metafunc.parametrize("n_devices", [pytest.param(n, marks=devices_marker(lan, n), id=f"n{n}")
                                       for n in counts])


@pytest.fixture(scope="session")
def pi_registry(collab_lan, request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with deploy_model.lab_registry(collab_lan, request.config, tmp_path_factory.mktemp("pi-registry")) as url:
        yield url


@pytest.fixture(scope="session")
def pi_build(tmp_path_factory: pytest.TempPathFactory):
    return deploy_model.exporter(Path(tmp_path_factory.mktemp("pi-export")))


@pytest.fixture(scope="session")
def pi_deploy():
    """model_distribution's ``deploy_model`` module (deploy, detect_arch, Served)."""
    return deploy_model
