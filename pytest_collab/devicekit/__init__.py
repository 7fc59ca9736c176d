"""The device kit: code that experiment programs import ON the devices.

Shipped to every device the way the wrapper is (as the standalone package
``collab_devicekit``, see :mod:`pytest_collab.runtime.shipping`), so it never imports
pytest or anything else of ``pytest_collab``: relative imports only, and third-party
modules (numpy, torch, grpcio, blosc2, flwr) only inside the submodules that need them,
so ``import collab_devicekit`` works on a bare Python.

Modules: ``codec`` (encodings, blosc2, the dtype plan), ``wire`` (protocol and client),
``tail_service`` (the server's half, warm-up, readiness), ``dataplane``/``data_service``/
``shm`` (tensor bytes beside gRPC: side socket, shared memory), ``loadgen`` (load modes and the
device's per-query timestamps), ``stats`` (the one percentile), ``emit`` (the one result
line), ``heap`` (the heap pad), ``artifact`` (the sidecar format), ``exported`` (load a
``.pt2``), ``needs`` (missing packages at start), ``head`` (one query, the summary row),
and the generic programs ``split_head`` and ``split_tail`` (``python -m``). See
docs/devicekit.md.
"""
from __future__ import annotations

import pathlib


def source_dir() -> pathlib.Path:
    """The folder copied to a device as ``collab_devicekit``."""
    return pathlib.Path(__file__).resolve().parent
