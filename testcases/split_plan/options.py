"""Options of the split_plan experiment (loaded by the root conftest.py). The model is
``--split-model`` (declared by split_resnet; the first one listed)."""
from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("split_plan", "split_plan experiment (choose a cut, check it)")
    g.addoption("--split-plan-input", default="3,64,64", metavar="C,H,W",
                help="input shape of the synthetic images (default 3,64,64)")
    g.addoption("--split-plan-depth", type=int, default=2,
                help="profile every module end up to this depth (default 2: features.N, layerN.M)")
    g.addoption("--split-plan-samples", type=int, default=20, help="samples profiled and measured (default 20)")
    g.addoption("--split-plan-encodings", default="fp32,fp16,int8", help="encodings considered (default all)")
    g.addoption("--split-plan-margin", type=float, default=0.15,
                help="fail when the measured best cut is more than this fraction faster than the "
                     "predicted best's measurement (default 0.15)")
    g.addoption("--split-plan-threads", type=int, default=1,
                help="torch threads on every device, profile and measurement alike (default 1)")
    g.addoption("--split-plan-link-mbps", type=float, default=0.0,
                help="link throughput to plan with (Mbit/s); 0 = the newest link_baseline run of this lab")
    g.addoption("--split-plan-rtt-ms", type=float, default=0.0,
                help="round trip to plan with (ms); 0 = measure the split wire's own on the device pair")
    g.addoption("--split-plan-burst-kb", type=float, default=0.0,
                help="with --split-plan-link-mbps: the link's burst (KiB that cross at line rate after "
                     "an idle spell: a token bucket's depth; default 0)")
    g.addoption("--split-plan-objective", choices=("latency", "energy"), default="latency",
                help="what the plan minimises: latency per query, or board energy per inference "
                     "(needs power on every device: a sensor or a power_meter, docs/energy.md)")
    g.addoption("--split-plan-sweep", default="5,20,100,1000",
                help="link rates (Mbit/s) the report draws predicted curves for (default 5,20,100,1000)")
