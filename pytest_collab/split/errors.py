"""The errors of the split library: each names the model, the point or the tensor, and the fix."""
from __future__ import annotations

import difflib
from typing import Sequence

from pytest_collab.errors import CollabError


class SplitError(CollabError):
    """A model can not be captured, cut or exported as asked."""


class CaptureError(SplitError):
    """Neither torch.export nor torch.fx could capture the model's graph."""


class PointError(SplitError):
    """A cut point is unknown or impossible; the message lists the valid ones nearest to it."""


def nearest(name: str, candidates: Sequence[str], n: int = 5) -> list[str]:
    """The candidate names most like ``name`` (spelling first, then the first few)."""
    close = difflib.get_close_matches(name, list(candidates), n=n, cutoff=0.4)
    return close or list(candidates[:n])
