"""Options of the parallel_inference experiment (loaded by the root conftest.py)."""
from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("parallel_inference", "parallel_inference experiment")
    g.addoption("--pi-devices", default="1,2,4",
                help="comma-separated device counts N to shard the stream across (default 1,2,4)")
    g.addoption("--pi-inputs", type=int, default=48, help="inputs in the stream (default 48)")
    g.addoption("--pi-model", default="mobilenet_v3_small",
                help="classifier: mobilenet_v3_small or tiny_cnn (default mobilenet_v3_small)")
