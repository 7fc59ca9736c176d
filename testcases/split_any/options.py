"""Options of the split_any experiment (loaded by the root conftest.py). ``--split-model``,
``--split-points``, ``--split-weights`` and ``--split-samples`` are shared with split_resnet
(declared in its options.py); these are split_any's own."""
from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("split_any", "split_any experiment (any model)")
    g.addoption("--split-encodings", default="fp32,int8",
                help="split_any: comma-separated encodings of the boundary: fp32, fp16, int8 (default fp32,int8)")
    g.addoption("--split-input", default="3,64,64", help="split_any: input shape C,H,W (default 3,64,64)")
    g.addoption("--split-trained", type=float, default=0.0,
                help="split_any: train each model on sklearn's digits for at most SECONDS (cached) and "
                     "report held-out accuracy per cut and encoding; 0 = random weights (default 0)")
