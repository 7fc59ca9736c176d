"""split_resnet options and the test matrix (model x split point x encoding).

The split names are ResNet's stages (``stem``, ``layer1`` .. ``layer4``) and are the test
ids and the ``split`` column; the test maps each to the split library's cut point.
The default matrix is what ``make demo`` runs: small enough for a 2-core machine in
under 5 minutes. ``--split-matrix full`` runs every stage boundary with every encoding.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_collab.session import collab_options_of

DEFAULT_SPLITS = ("layer1", "layer2", "layer3")
DEFAULT_ENCODINGS = ("fp32", "fp16", "int8")
FULL_SPLITS = ("stem", "layer1", "layer2", "layer3", "layer4")
BASELINE_ENCODING = {"full_offload": "raw", "on_device": "none"}
SIZE = (3, 224, 224)     # the ImageNet crop


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not {"model", "split", "encoding"} <= set(metafunc.fixturenames):
        return
    opt = collab_options_of(metafunc.config).get
    models = [m.strip() for m in (opt("split_model") or "resnet18").split(",") if m.strip()]
    full = opt("split_matrix") == "full"
    splits = opt("split_points").split(",") if opt("split_points") else (FULL_SPLITS if full else DEFAULT_SPLITS)
    cases = []
    for model in models:
        cases += [(model, s, BASELINE_ENCODING[s]) for s in ("full_offload", "on_device")]
        cases += [(model, s, e) for s in splits if s not in BASELINE_ENCODING for e in DEFAULT_ENCODINGS]
    metafunc.parametrize(("model", "split", "encoding"), cases, ids=["-".join(c) for c in cases])


@pytest.fixture(scope="session")
def split_options(collab_options) -> dict[str, Any]:
    """The experiment's settings, plus the link throughput for the analytic lower bound."""
    opt = collab_options.get
    link = opt("split_link_mbps") or _link_baseline_mbps(Path(collab_options.out_dir), collab_options.lan.name)
    return {"weights": opt("split_weights"), "data": opt("split_data"), "samples": opt("split_samples"),
            "batch": opt("split_batch"), "mode": opt("split_mode"), "rate": opt("split_rate"),
            "transport": opt("split_transport"), "link_mbps": link or 0.0, "seed": 0,
            "artifacts": Path(__file__).resolve().parent / ".artifacts"}


@pytest.fixture(scope="session")
def _networks() -> dict[str, Any]:
    return {}


@pytest.fixture
def network(_networks, split_options, model: str) -> Any:
    """The torchvision model, built once per session (random init with the seed, or the weights)."""
    from pytest_collab import split

    if model not in _networks:
        _networks[model] = split.load_model(model, weights=split_options["weights"], seed=split_options["seed"])
    return _networks[model]


@pytest.fixture(scope="session")
def images(split_options) -> Any:
    """uint8 (N, 3, 224, 224): the --split-data folder, or seeded synthetic images."""
    from pytest_collab import split

    o = split_options
    if o["data"]:
        return split.from_folder(o["data"], o["samples"], SIZE)
    return split.synthetic(o["samples"], SIZE, seed=o["seed"])


def _link_baseline_mbps(reports: Path, profile: str) -> float | None:
    """Throughput of the newest link_baseline run on the same profile (this session's included)."""
    from pytest_collab.split.profile import link_from_reports

    link, _ = link_from_reports(reports, profile)
    return link.mbps if link else None
