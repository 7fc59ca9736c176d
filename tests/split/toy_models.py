"""A user's own models for the split library's tests (importable as ``toy_models:Attr``)."""
from __future__ import annotations

import torch
from torch import nn


class SkipNet(nn.Module):
    """Stem, one residual block (a skip around two convs), pooling and a linear head."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.conv_a = nn.Conv2d(8, 8, 3, padding=1)
        self.conv_b = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        y = self.conv_b(torch.relu(self.conv_a(x)))
        return self.head(torch.relu(x + y))


class ChunkNet(nn.Module):
    """Splits channels in two with ``chunk``: right after it a list would cross, no cut there."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.conv(x).chunk(2, dim=1)
        return self.fc((a * torch.sigmoid(b)).mean(dim=(2, 3)))


class DoubleNet(nn.Module):
    """Computes in float64 in the middle: a cut there sends a dtype the wire cannot carry."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.conv(x).double() * 2.0
        return self.fc(d.float().mean(dim=(2, 3)))


class BranchyNet(nn.Module):
    """Python control flow on a tensor value: torch.export and torch.fx both refuse it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if y.sum().item() > 0:
            return y.mean(dim=(2, 3))
        return -y.mean(dim=(2, 3))


class InplaceNet(nn.Module):
    """Mutates a tensor another op still reads: a cut between them must not change the output."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        z = y * 2.0
        y.relu_()               # z was made before the mutation, y + z after it
        return self.fc((y + z).mean(dim=(2, 3)))
