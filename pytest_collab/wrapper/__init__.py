"""The metrics wrapper: runs next to a device program and reports on it as JSON Lines.

This package is stdlib only and imports nothing else of ``pytest_collab`` (relative
imports only), because deploy code copies :func:`source_dir` to each device as a
standalone package named ``collab_wrapper`` and runs ``python3 -m collab_wrapper``.
The protocol it speaks is described in ``docs/architecture.md`` ("The wrapper protocol").
"""
from __future__ import annotations

import pathlib

#: Written as ``"v"`` in the ``start`` line; bump it when the line format changes.
PROTOCOL_VERSION = 1


def source_dir() -> pathlib.Path:
    """The folder to copy to a device (as ``collab_wrapper``) to run the wrapper there."""
    return pathlib.Path(__file__).resolve().parent
