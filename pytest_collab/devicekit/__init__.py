"""The device kit: code that experiment programs import ON the devices.

Shipped to every device the way the wrapper is (as the standalone package
``collab_devicekit``, see :mod:`pytest_collab.runtime.shipping`), so it never imports
pytest or anything else of ``pytest_collab``: relative imports only, and third-party
modules (numpy, torch, grpcio, blosc2, flwr) only inside the submodules that need them,
so ``import collab_devicekit`` works on a bare Python.
"""
from __future__ import annotations

import pathlib


def source_dir() -> pathlib.Path:
    """The folder copied to a device as ``collab_devicekit``."""
    return pathlib.Path(__file__).resolve().parent
