"""Local training and evaluation loops, and the payload size of a parameter record."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from .data import Split


def fit(model: nn.Module, data: Split, epochs: int, lr: float, batch_size: int,
        seed: int) -> dict[str, float]:
    """SGD with momentum on ``data``; returns loss/accuracy of the last epoch and wall time."""
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    t0 = time.perf_counter()
    loss_sum, correct = 0.0, 0
    for _ in range(epochs):
        loss_sum, correct = 0.0, 0
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            opt.zero_grad()
            out = model(x[idx])
            loss = loss_fn(out, y[idx])
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == y[idx]).sum())
    return {"loss": loss_sum / len(y), "accuracy": correct / len(y),
            "train_time_s": time.perf_counter() - t0}


@torch.no_grad()
def evaluate(model: nn.Module, data: Split, batch_size: int = 512) -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``data``."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    loss_sum, correct = 0.0, 0
    for idx in torch.arange(len(y)).split(batch_size):
        out = model(x[idx])
        loss_sum += float(loss_fn(out, y[idx]))
        correct += int((out.argmax(1) == y[idx]).sum())
    return {"loss": loss_sum / len(y), "accuracy": correct / len(y)}


def payload_bytes(content: object) -> int:
    """Bytes a Flower ``RecordDict`` carries (tensors, metrics, config): the message payload."""
    return int(sum(rec.count_bytes() for rec in content.values()))  # type: ignore[attr-defined]


def label_counts(y: np.ndarray, n_classes: int = 10) -> list[int]:
    return np.bincount(y, minlength=n_classes).tolist()
