"""pytest-collab: collaborative deep-learning experiments on a lab of edge devices, as pytest tests."""
from __future__ import annotations

__version__ = "0.1.0"

from pytest_collab.errors import CollabError  # noqa: E402  (light: errors imports only pytest)

__all__ = ["CollabError", "__version__"]
