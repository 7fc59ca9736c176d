"""Options and the test matrix of testcases/federated (clients x IID/non-IID x rounds).

The default selection on the local lab is one configuration (2 IID clients), about 40 s
on a loaded 2-core machine; ``--fl-full`` (or any other LAN) runs the whole matrix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_collab.session import collab_options_of

APP = (Path(__file__).parent / "app").resolve()
CLIENTS = (2, 4)
ALPHAS = (None, 0.5)        # None = IID; else Dirichlet(alpha) label skew


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not {"clients", "alpha", "rounds"} <= set(metafunc.fixturenames):
        return
    rounds = [int(r) for r in collab_options_of(metafunc.config)["fl_rounds"].split(",") if r.strip()]
    cases = []
    for n in CLIENTS:
        for alpha in ALPHAS:
            for r in rounds:
                part = "iid" if alpha is None else f"alpha{alpha:g}"
                cases.append(pytest.param(n, alpha, r, id=f"clients{n}-{part}-rounds{r}",
                                          marks=pytest.mark.devices(server=1, rpi=n)))
    metafunc.parametrize(("clients", "alpha", "rounds"), cases)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    opts = collab_options_of(config)  # the resolved lab: --lan, PYTEST_COLLAB_LAN or collab_lan
    if opts["fl_full"] or opts.lan.name != "local":
        return
    skip = pytest.mark.skip(reason="local lab runs clients2-iid only; pass --fl-full for the "
                                   "matrix and the client-loss scenario")
    for item in items:
        if item.path.parent.name != "federated" or item.path.name != "test_federated.py":
            continue
        params = getattr(item, "callspec", None)
        p = params.params if params else {}
        if p.get("clients") != 2 or p.get("alpha") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fl_options(collab_options) -> dict:
    data = collab_options["fl_data"]
    model = collab_options["fl_model"] or ("resnet18" if data.startswith("cifar10:") else "cnn")
    app = Path(collab_options["fl_app"]).expanduser().resolve() if collab_options["fl_app"] else APP
    return {"data": data, "model": model, "epochs": collab_options["fl_epochs"],
            "round_timeout": collab_options["fl_round_timeout"], "app": app}
