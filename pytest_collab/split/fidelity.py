"""How faithful a split is: held-out accuracy, top-1 agreement and logit error.

numpy only, so any side can compute them from logits (arrays of shape (N, classes)).
With random weights top-1 agreement says little (the logits are nearly flat), so report
accuracy on held-out data of a model trained on real data beside it
(:mod:`pytest_collab.split.digits`).
"""
from __future__ import annotations

from typing import Any

import numpy as np


def _logits(a: Any) -> np.ndarray:
    arr = np.asarray(a.detach().cpu().numpy() if hasattr(a, "detach") else a, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"logits must be (N, classes), got shape {arr.shape}")
    return arr


def accuracy(logits: Any, labels: Any) -> float:
    """Share of rows whose arg-max is the label."""
    lg = _logits(logits)
    lab = np.asarray(labels).reshape(-1)
    if len(lab) != len(lg):
        raise ValueError(f"{len(lg)} rows of logits but {len(lab)} labels")
    return float(np.mean(lg.argmax(1) == lab)) if len(lab) else float("nan")


def top1_agreement(reference: Any, other: Any) -> float:
    """Share of rows where both logit arrays pick the same class."""
    a, b = _pair(reference, other)
    return float(np.mean(a.argmax(1) == b.argmax(1))) if len(a) else float("nan")


def logit_error(reference: Any, other: Any) -> dict[str, float]:
    """Max and mean absolute difference, and the max relative to the reference's largest logit."""
    a, b = _pair(reference, other)
    diff = np.abs(a - b)
    scale = float(np.abs(a).max()) if a.size else 0.0
    return {"max_logit_error": float(diff.max()) if diff.size else 0.0,
            "mean_logit_error": float(diff.mean()) if diff.size else 0.0,
            "rel_logit_error": float(diff.max() / scale) if diff.size and scale else 0.0}


def summary(reference: Any, other: Any, labels: Any = None) -> dict[str, float]:
    """The fidelity columns of a result row: agreement, logit error and, given labels, the
    accuracy of the unsplit model (``accuracy_ref``) and of the split (``accuracy``)."""
    row = {"top1_agreement": top1_agreement(reference, other), **logit_error(reference, other)}
    if labels is not None:
        row["accuracy_ref"] = accuracy(reference, labels)
        row["accuracy"] = accuracy(other, labels)
    return row


def _pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = _logits(a), _logits(b)
    if x.shape != y.shape:
        raise ValueError(f"logit arrays differ in shape: {x.shape} vs {y.shape}")
    return x, y
