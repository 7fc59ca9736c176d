"""Options of the split_resnet experiment (loaded by the root conftest.py, so they work
with ``pytest testcases`` too)."""
from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("split_resnet", "split_resnet experiment")
    g.addoption("--split-model", default=None,
                help="comma-separated models: split_resnet takes ResNets, e.g. resnet18, resnet50 (default resnet18); "
                     "split_any any torchvision classifier or module:attr (default mobilenet_v3_small)")
    g.addoption("--split-weights", default=None,
                help="local state_dict .pth for the model (default: random init, fixed seed)")
    g.addoption("--split-data", default=None, help="folder of images (default: seeded synthetic images)")
    g.addoption("--split-samples", type=int, default=24, help="images per test (default 24)")
    g.addoption("--split-batch", type=int, default=1, help="images per query (default 1)")
    g.addoption("--split-matrix", choices=("default", "full"), default="default",
                help="default: layer1-3 x fp32/fp16/int8 + baselines; full: every stage (default default)")
    g.addoption("--split-points", default=None,
                help="comma-separated split points overriding the matrix's (stem, layer1..layer4 or any module name); "
                     "split_any: auto (3 spread points) or names (default: 2 spread points)")
    g.addoption("--split-mode", choices=("single", "server"), default="single",
                help="load: single-stream or server (Poisson arrivals) (default single)")
    g.addoption("--split-rate", type=float, default=10.0, help="server mode queries/s (default 10)")
    g.addoption("--split-link-mbps", type=float, default=0.0,
                help="link throughput (Mbit/s) for the lower bound; 0 = the newest link_baseline "
                     "grpc result under reports/, else measured by the client (default 0)")
    g.addoption("--split-transport", choices=("auto", "grpc", "tcp", "shm"), default="auto",
                help="what carries the tensors: auto (shared memory on one host, else a TCP data socket "
                     "beside gRPC, else gRPC), or force one (default auto); recorded as 'transport'")
