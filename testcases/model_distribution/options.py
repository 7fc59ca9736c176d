"""Options of the model_distribution experiment (loaded by the root conftest.py)."""
from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("model_distribution", "model_distribution experiment")
    g.addoption("--md-model", default="mobilenet_v3_small",
                help="classifier to distribute: mobilenet_v3_small or tiny_cnn (default mobilenet_v3_small)")
    g.addoption("--md-devices", type=int, default=2,
                help="edge devices to distribute to (default 2)")
    g.addoption("--md-predictions", type=int, default=20,
                help="predictions per device after the first (default 20)")
