"""Fail at start, clearly, on a device that lacks what a program needs.

A device program that dies on ``import torch`` deep inside its first query leaves a
traceback the user must decode; :func:`require` checks up front and names the device,
the program and the pip packages to install. Standard library only.
"""
from __future__ import annotations

import importlib.util
import os
import socket

PIP_NAMES = {"grpc": "grpcio", "torch": "torch", "numpy": "numpy", "blosc2": "blosc2"}


def device_name() -> str:
    """The lab's name for this device (the controller sets COLLAB_DEVICE), else the host name."""
    return os.environ.get("COLLAB_DEVICE") or socket.gethostname()


def missing(*modules: str) -> list[str]:
    """The modules of ``modules`` this Python cannot import."""
    out = []
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                out.append(name)
        except (ImportError, ValueError):
            out.append(name)
    return out


def require(program: str, *modules: str) -> None:
    """Exit (status 1, a message, no traceback) naming the device and the missing packages."""
    absent = missing(*modules)
    if absent:
        pip = " ".join(PIP_NAMES.get(m, m) for m in absent)
        raise SystemExit(
            f"{program} on device {device_name()!r}: missing Python package(s) {', '.join(absent)}; "
            f"install them on that device (pip install {pip}) or run it in an image that has them")


def main(argv: list[str] | None = None) -> int:
    """``python -m collab_devicekit.needs MODULE...``: a device check a controller can run
    before the real work (exit 1 naming the device and what to install, else 0)."""
    import sys

    modules = sys.argv[1:] if argv is None else argv
    require("needs", *modules)
    print(f"{device_name()}: {', '.join(modules) or 'nothing asked'} importable", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
