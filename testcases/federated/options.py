"""Options of the federated experiment (loaded by the root conftest.py, so they work
with ``pytest testcases`` too)."""
from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("federated", "federated experiment (Flower)")
    g.addoption("--fl-app", default=None,
                help="run this Flower app folder (flwr run layout) instead of the shipped one; "
                     "it keeps its own run config, num-server-rounds comes from --fl-rounds "
                     "(--fl-data/--fl-model/--fl-epochs and the alpha matrix apply to the "
                     "shipped app only)")
    g.addoption("--fl-data", default="digits",
                help="digits (bundled with scikit-learn) or cifar10:/path/to/cifar-10-batches-py "
                     "(default digits)")
    g.addoption("--fl-model", default=None,
                help="cnn or resnet18 (default cnn for digits, resnet18 for cifar10)")
    g.addoption("--fl-rounds", default="3", help="comma-separated round counts (default 3)")
    g.addoption("--fl-epochs", type=int, default=3, help="local epochs per round (default 3)")
    g.addoption("--fl-round-timeout", type=float, default=120.0,
                help="seconds a client may take per phase before it counts as lost (default 120)")
    g.addoption("--fl-full", action="store_true",
                help="run the whole matrix on the local lab too (default: clients2-iid only)")
